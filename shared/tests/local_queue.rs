//! The local stack's durable queue keeps SQS's promises: hidden while received, back after
//! the visibility timeout, dead-lettered after its receives, nothing lost when the process
//! dies (reopened from the same directory), and many senders at once.

use std::{sync::Arc, time::Duration};

use snowcast::adapters::local::queue::{LocalQueue, QueueSettings};

fn settings(visibility_ms: u64, max_receives: u32) -> QueueSettings {
    QueueSettings {
        visibility: Duration::from_millis(visibility_ms),
        max_receives,
    }
}

#[test]
fn a_received_message_is_hidden_until_its_visibility_runs_out_unless_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::open(dir.path(), settings(200, 5)).unwrap();
    let first = queue.send_body("first").unwrap();
    queue.send_body("second").unwrap();

    let got = queue.receive(1).unwrap();
    assert_eq!(
        (
            got[0].receipt.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (first.as_str(), "first", 1)
    );
    let got = queue.receive(10).unwrap();
    assert_eq!(got.len(), 1, "the first is hidden");
    assert_eq!(got[0].body, "second");
    assert!(queue.receive(10).unwrap().is_empty());

    queue.delete(&got[0].receipt).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let again = queue.receive(10).unwrap();
    assert_eq!(again.len(), 1, "only the undeleted one comes back");
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        ("first", 2)
    );
    queue.delete(&again[0].receipt).unwrap();
    queue.delete(&again[0].receipt).unwrap();
    assert!(queue.is_empty());
}

#[test]
fn a_message_received_too_often_moves_to_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::open(dir.path(), settings(0, 3)).unwrap();
    queue.send_body("poison").unwrap();
    for count in 1..=3 {
        let got = queue.receive(10).unwrap();
        assert_eq!(got[0].receive_count, count);
    }
    assert!(queue.receive(10).unwrap().is_empty());
    assert!(queue.is_empty());
    assert_eq!(queue.dead_letters().unwrap(), ["poison"]);
}

#[test]
fn a_damaged_message_file_goes_to_the_dead_letters_and_the_rest_flow() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::open(dir.path(), settings(60_000, 3)).unwrap();
    let damaged = queue.send_body("first").unwrap();
    queue.send_body("second").unwrap();
    std::fs::write(
        dir.path().join("messages").join(format!("{damaged}.json")),
        b"{\"body\": \"fir",
    )
    .unwrap();
    let got = queue.receive(10).unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["second"]
    );
    assert_eq!(queue.len(), 1, "the damaged file is no longer waiting");
    assert_eq!(queue.dead_letters().unwrap(), ["{\"body\": \"fir"]);
}

#[test]
fn a_message_that_cannot_be_read_now_is_kept_not_buried() {
    let dir = tempfile::tempdir().unwrap();
    let id = LocalQueue::open(dir.path(), settings(60_000, 3))
        .unwrap()
        .send_body("kept")
        .unwrap();
    // A read that fails for a reason other than the content (here: a directory where the
    // file was) is an error of the receive; the message is not set aside.
    let file = dir.path().join("messages").join(format!("{id}.json"));
    std::fs::rename(&file, dir.path().join("saved")).unwrap();
    std::fs::create_dir(&file).unwrap();
    let queue = LocalQueue::open(dir.path(), settings(60_000, 3)).unwrap();
    assert!(queue.receive(10).is_err());
    assert!(queue.dead_letters().unwrap().is_empty());
    std::fs::remove_dir(&file).unwrap();
    std::fs::rename(dir.path().join("saved"), &file).unwrap();
    assert_eq!(queue.receive(10).unwrap()[0].body, "kept");
}

#[test]
fn a_process_that_dies_loses_nothing_and_its_interrupted_delivery_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = LocalQueue::open(dir.path(), settings(60_000, 2)).unwrap();
        for body in ["a", "b", "c"] {
            queue.send_body(body).unwrap();
        }
        let got = queue.receive(2).unwrap();
        queue.delete(&got[0].receipt).unwrap();
        // "b" is in flight when the process dies; a send died before its rename.
        std::fs::write(dir.path().join("messages").join("ffff.tmp"), b"half").unwrap();
    }
    let queue = LocalQueue::open(dir.path(), settings(60_000, 2)).unwrap();
    let got = queue.receive(10).unwrap();
    let seen: Vec<(&str, u32)> = got
        .iter()
        .map(|m| (m.body.as_str(), m.receive_count))
        .collect();
    assert_eq!(
        seen,
        [("b", 1), ("c", 1)],
        "in order, visible at once; b's delivery ended with its process, so it is not counted"
    );
    assert!(!dir.path().join("messages").join("ffff.tmp").exists());
    let later = queue.send_body("d").unwrap();
    assert!(
        later > got[1].receipt,
        "ids keep their order across restarts"
    );
}

/// Killed three times in the middle of one message (a user stopping a long conversion):
/// still delivered. A message that kills its process every time still ends in the dead
/// letters once the forgiven interruptions are used up.
#[test]
fn interrupted_deliveries_are_forgiven_three_times_then_they_count() {
    let dir = tempfile::tempdir().unwrap();
    LocalQueue::open(dir.path(), settings(60_000, 2))
        .unwrap()
        .send_body("long")
        .unwrap();
    let mut counts = Vec::new();
    for _ in 0..6 {
        // Each opening is a process: it receives the message and dies with it in flight.
        let queue = LocalQueue::open(dir.path(), settings(60_000, 2)).unwrap();
        counts.push(queue.receive(1).unwrap().first().map(|m| m.receive_count));
    }
    assert_eq!(
        counts,
        [Some(1), Some(1), Some(1), Some(1), Some(2), None],
        "three interruptions forgiven, then two receives, then the dead letters"
    );
    let queue = LocalQueue::open(dir.path(), settings(60_000, 2)).unwrap();
    assert_eq!(queue.dead_letters().unwrap(), ["long"]);
}

#[test]
fn concurrent_senders_each_get_a_unique_id_and_every_message_is_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(LocalQueue::open(dir.path(), settings(60_000, 5)).unwrap());
    let senders: Vec<_> = (0..4)
        .map(|thread| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                (0..50)
                    .map(|n| queue.send_body(&format!("{thread}-{n}")).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let mut bodies: Vec<String> = queue
        .receive(1_000)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 200);
    assert!(queue.receive(1_000).unwrap().is_empty());
}
