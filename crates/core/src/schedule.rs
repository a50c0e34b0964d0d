//! Running a route's checks at once: a route costs its slowest check, not
//! the sum.
//!
//! One check runs on the calling thread at once, the one `here` names (a
//! program, when the route has one: starting a process is the slowest part
//! of most routes). The others run on scoped threads that one helper thread
//! starts, so that starting threads, slow on some machines (150 µs a thread
//! was measured on this project's VMs, ten times bare metal), is not on that
//! check's path. Nothing outlives the call (`std::thread::scope`), and a
//! thread that fails to start or panics is `failed`'s result, never a crash
//! of the caller.

/// The stack of a check's thread: checks are shallow (the deepest is the
/// MySQL client's), and a smaller mapping is less to set up per poll.
const CHECK_STACK: usize = 256 * 1024;

/// Runs `run(i)` for every `i` of `jobs` concurrently and returns the
/// results in the order of `jobs`. `here` is the position in `jobs` of the
/// job to run on the calling thread; a job whose thread cannot start or
/// panics gets `failed(i)`.
pub(crate) fn run_all<T, R, F>(jobs: &[usize], here: usize, run: R, failed: F) -> Vec<T>
where
    T: Send,
    R: Fn(usize) -> T + Sync,
    F: Fn(usize) -> T + Sync,
{
    match jobs {
        [] => return Vec::new(),
        [one] => return vec![run(*one)],
        _ => {}
    }
    let here = here.min(jobs.len() - 1);
    let others: Vec<usize> = jobs
        .iter()
        .enumerate()
        .filter(|&(at, _)| at != here)
        .map(|(_, &i)| i)
        .collect();
    let thread = || std::thread::Builder::new().stack_size(CHECK_STACK);
    let (run, failed, others) = (&run, &failed, &others);
    let mut by_job: Vec<(usize, T)> = std::thread::scope(|scope| {
        let helper = thread().spawn_scoped(scope, move || {
            let Some((first, rest)) = others.split_first() else {
                return Vec::new();
            };
            let handles: Vec<_> = rest
                .iter()
                .map(|&i| (i, thread().spawn_scoped(scope, move || run(i))))
                .collect();
            // The helper runs one job itself: one thread fewer.
            let mut results = vec![(*first, run(*first))];
            for (i, handle) in handles {
                let joined = handle.map_err(drop).and_then(|h| h.join().map_err(drop));
                results.push((i, joined.unwrap_or_else(|()| failed(i))));
            }
            results
        });
        let mut results = vec![(jobs[here], run(jobs[here]))];
        match helper.map_err(drop).and_then(|h| h.join().map_err(drop)) {
            Ok(theirs) => results.extend(theirs),
            Err(()) => results.extend(others.iter().map(|&i| (i, failed(i)))),
        }
        results
    });
    // Back in the order asked for.
    by_job.sort_by_key(|(i, _)| jobs.iter().position(|j| j == i));
    by_job.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn results_come_back_in_order_and_at_once() {
        let started = Instant::now();
        let got = run_all(
            &[4, 2, 7, 1],
            2,
            |i| {
                std::thread::sleep(Duration::from_millis(100));
                i * 10
            },
            |_| 0,
        );
        assert_eq!(got, [40, 20, 70, 10]);
        // Four 100 ms jobs at once, not one after another.
        assert!(
            started.elapsed() < Duration::from_millis(350),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(run_all(&[], 0, |i| i, |_| 0), Vec::<usize>::new());
        assert_eq!(run_all(&[3], 5, |i| i, |_| 0), [3]);
    }

    #[test]
    fn a_panicking_job_is_its_failed_result() {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let got = run_all(
            &[1, 2, 3],
            0,
            |i| {
                if i == 3 {
                    panic!("a bug in check {i}");
                }
                i
            },
            |_| 99,
        );
        std::panic::set_hook(previous);
        assert_eq!(got, [1, 2, 99]);
    }
}
