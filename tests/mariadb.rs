//! Placeholder: helper-3 is writing the MariaDB system tests.
