//! The real `kwire tui` binary in a real terminal: tmux runs it on a corpus
//! capture, send-keys types, capture-pane reads the screen. It checks what
//! a person would see: the title, the rows, the detail after Enter, the
//! help on `?`, and that `q` quits cleanly and gives the screen back.
//!
//! Needs tmux (Debian: `apt-get install tmux`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session, killed when dropped.
struct Session {
    name: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

impl Session {
    fn start(command: &str, width: u16, height: u16) -> Session {
        let name = format!("kwire-test-{}", std::process::id());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .unwrap_or_else(|error| {
                panic!("cannot run tmux ({error}): install it with `apt-get install tmux`")
            });
        assert!(status.success(), "tmux new-session failed");
        Session { name }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn alternate_screen(&self) -> bool {
        let output = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }

    /// Waits (at most 15 s) until the screen holds every one of `texts`.
    fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {texts:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_person_browses_a_capture_and_quits() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is missing: install it with `apt-get install tmux`");
    }
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let command = format!(
        "{} tui {}; echo KWIRE-EXITED $?; sleep 30",
        env!("CARGO_BIN_EXE_kwire"),
        capture.display()
    );
    let session = Session::start(&command, 120, 40);

    // The title, the tabs and the first rows.
    let screen = session.wait_for(&["kwire", "104 exchanges", "done", "ApiVersions@3"]);
    assert!(screen.contains("1 Exchanges"), "{screen}");
    assert!(screen.contains("Metadata@2"), "{screen}");
    assert!(screen.contains("kwire-corpus-kcat"), "{screen}");
    assert!(
        session.alternate_screen(),
        "the UI uses the alternate screen"
    );

    // The eighth row is kcat's first Produce: Enter shows its detail.
    for _ in 0..7 {
        session.keys(&["j"]);
    }
    session.keys(&["Enter"]);
    let screen = session.wait_for(&["request: Produce v7 request", "hex: request"]);
    assert!(screen.contains("topic_data (1 item)"), "{screen}");
    assert!(screen.contains("0000  00 00 05 4b"), "{screen}");
    // Space folds the request: the response comes into view.
    session.keys(&["Space"]);
    session.wait_for(&["▸ request: Produce v7", "▾ response: Produce v7 response"]);

    // A filter, typed: the list narrows.
    session.keys(&["Escape", "f"]);
    session.keys(&["-l", "api=Produce"]);
    session.keys(&["Enter"]);
    session.wait_for(&["7 of 104 exchanges", "filter: api=Produce"]);

    // The help lists the keys; any key closes it.
    session.keys(&["?"]);
    let screen = session.wait_for(&["keys (any key closes)", "quit"]);
    assert!(screen.contains("help"), "{screen}");
    session.keys(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.screen().contains("keys (any key closes)") {
        assert!(Instant::now() < deadline, "the help did not close");
        std::thread::sleep(Duration::from_millis(100));
    }

    // q quits: exit status 0, the shell's screen is back.
    session.keys(&["q"]);
    let screen = session.wait_for(&["KWIRE-EXITED 0"]);
    assert!(!session.alternate_screen(), "the alternate screen was left");
    assert!(!screen.contains("1 Exchanges"), "the UI is gone:\n{screen}");
}

#[test]
fn tui_without_a_terminal_says_what_to_use() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("tui")
        .arg(&capture)
        .output()
        .expect("run kwire");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("kwire read"),
        "{stderr}"
    );
}
