//! Waiting for a child process with a deadline, shared by the core and CLI
//! test binaries (the CLI's includes this file by path): a hung child must
//! fail its test, not stall the suite.

use std::io::Read;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// `Child::wait_with_output` with a deadline: past it the child is killed
/// and the test fails, showing what it printed so far.
pub fn output_within(mut child: Child, limit: Duration) -> Output {
    // Drain both pipes while waiting, or a chatty child blocks on a full pipe.
    fn drain(p: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                p.read_to_end(&mut buf).ok();
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            let text = String::from_utf8_lossy(&out.join().unwrap()).to_string()
                + &String::from_utf8_lossy(&err.join().unwrap());
            panic!("child process still running after {limit:?}; killed it. Output so far:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}
