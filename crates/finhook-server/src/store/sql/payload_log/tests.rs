//! The payload log on a real directory: appends, syncs, reads back checked, moves on after
//! a failure, erases and drops what no message names.

use std::os::unix::fs::MetadataExt;

use super::*;

fn sha(bytes: &[u8]) -> String {
    finhook_core::secret::hex(&Sha256::digest(bytes))
}

fn log_in(dir: &tempfile::TempDir) -> PayloadLog {
    PayloadLog::open(dir.path().join("finhook.db.payloads")).expect("open")
}

fn files(log: &PayloadLog) -> Vec<u64> {
    let mut found = segments(log.dir()).expect("segments");
    found.sort_unstable();
    found
}

#[test]
fn bodies_appended_then_synced_read_back_as_they_were() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    let (kyc, accounts) = (br#"{"ResponseType":"KYC"}"#.as_slice(), vec![b'a'; 9000]);
    let first = log.append(&Bytes::from_static(kyc));
    let second = log.append(&Bytes::from(accounts.clone()));
    assert_eq!(first, PayloadRef { segment: 1, offset: 0, length: kyc.len() as u64 });
    assert_eq!(second, PayloadRef { segment: 1, offset: kyc.len() as u64, length: 9000 });
    assert!(files(&log).is_empty(), "nothing touches the disk before the sync");
    log.sync().expect("sync");
    assert_eq!(read(log.dir(), first, &sha(kyc)).expect("first"), kyc);
    assert_eq!(read(log.dir(), second, &sha(&accounts)).expect("second"), accounts);
    log.sync().expect("a sync with nothing new is a no-op");
    assert_eq!(files(&log), [1]);
    let mode = std::fs::metadata(segment_path(log.dir(), 1)).expect("segment").mode() & 0o777;
    assert_eq!(mode, 0o600, "callback bodies are personal data: readable by finhook alone");
}

#[test]
fn each_start_writes_a_segment_of_its_own_and_reads_the_old_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    let before = log.append(&Bytes::from_static(b"before the restart"));
    log.sync().expect("sync");
    drop(log);
    // The tail of the last segment may hold a torn write of a batch that never committed:
    // nothing is ever appended after it.
    let log = log_in(&dir);
    assert_eq!(log.active_segment(), 2);
    let after = log.append(&Bytes::from_static(b"after"));
    log.sync().expect("sync");
    assert_eq!(after.segment, 2);
    assert_eq!(read(log.dir(), before, &sha(b"before the restart")).expect("old"), b"before the restart");
    assert_eq!(read(log.dir(), after, &sha(b"after")).expect("new"), b"after");
}

#[test]
fn a_segment_full_enough_gives_way_to_the_next() {
    let dir = tempfile::tempdir().expect("dir");
    let log = PayloadLog { segment_bytes: 10, ..log_in(&dir) };
    let first = log.append(&Bytes::from_static(b"0123456789ab"));
    log.sync().expect("sync");
    let second = log.append(&Bytes::from_static(b"next"));
    log.sync().expect("sync");
    assert_eq!((first.segment, second.segment, second.offset), (1, 2, 0));
    assert_eq!(files(&log), [1, 2]);
}

#[test]
fn after_a_failed_sync_the_log_never_writes_that_segment_again() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    // Something else holds the name of the segment to create: creating it fails, as a
    // full disk or a failing device would fail a write. (Permissions would not: tests
    // run as root.)
    std::fs::create_dir(segment_path(log.dir(), 1)).expect("squat the name");
    let lost = log.append(&Bytes::from_static(b"lost"));
    assert!(log.sync().is_err(), "the batch must not commit");
    assert_eq!(log.active_segment(), 2, "the next appends go to a new segment");
    let kept = log.append(&Bytes::from_static(b"kept"));
    log.sync().expect("sync");
    assert_eq!(kept, PayloadRef { segment: 2, offset: 0, length: 4 }, "nothing of the failed batch was carried over");
    assert_eq!(read(log.dir(), kept, &sha(b"kept")).expect("kept"), b"kept");
    assert!(read(log.dir(), lost, &sha(b"lost")).is_err());
}

#[test]
fn a_body_that_is_not_what_was_stored_is_never_served() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    let body = br#"{"Login":{"Id":"a"}}"#;
    let at = log.append(&Bytes::from_static(body));
    log.sync().expect("sync");
    let path = segment_path(log.dir(), at.segment);

    let mut flipped = std::fs::read(&path).expect("segment");
    flipped[3] ^= 0x20;
    std::fs::write(&path, &flipped).expect("flip one bit");
    let error = read(log.dir(), at, &sha(body)).expect_err("a flipped bit");
    assert!(matches!(&error, StoreError::Corrupt(why) if why.contains("do not match the SHA-256")), "{error}");

    std::fs::write(&path, &body[..5]).expect("truncate");
    let error = read(log.dir(), at, &sha(body)).expect_err("a short segment");
    assert!(matches!(&error, StoreError::Corrupt(why) if why.contains("ends before")), "{error}");

    std::fs::remove_file(&path).expect("remove");
    let error = read(log.dir(), at, &sha(body)).expect_err("no segment");
    assert!(matches!(&error, StoreError::Corrupt(why) if why.contains("missing")), "{error}");
}

#[test]
fn erased_bodies_leave_zeros_and_their_neighbours_intact() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    let (first, second, third) = (vec![b'1'; 5000], vec![b'2'; 9000], vec![b'3'; 100]);
    let at = [&first, &second, &third].map(|body| log.append(&Bytes::from(body.clone())));
    log.sync().expect("sync");
    log.erase(&[at[1]]).expect("erase");
    let bytes = std::fs::read(segment_path(log.dir(), 1)).expect("segment");
    assert_eq!(bytes.len(), 14_100, "the segment keeps its size: later offsets still hold");
    assert!(bytes[5000..14_000].iter().all(|&b| b == 0), "no byte of the erased body is left");
    assert_eq!(read(log.dir(), at[0], &sha(&first)).expect("before it"), first);
    assert_eq!(read(log.dir(), at[2], &sha(&third)).expect("after it"), third);
    let gone = PayloadRef { segment: 9, offset: 0, length: 4 };
    log.erase(&[gone]).expect("a segment already dropped has nothing to erase");
}

#[test]
fn segments_go_once_no_message_names_them_and_the_active_one_stays() {
    let dir = tempfile::tempdir().expect("dir");
    let mut log = log_in(&dir);
    for _ in 0..3 {
        log.append(&Bytes::from_static(b"x"));
        log.sync().expect("sync");
        drop(log);
        log = log_in(&dir);
    }
    assert_eq!(files(&log), [1, 2, 3]);
    let active = log.active_segment();
    assert_eq!(log.drop_before(active, Some(2)).expect("drop"), 1, "below the oldest named");
    assert_eq!(files(&log), [2, 3]);
    log.append(&Bytes::from_static(b"y"));
    log.sync().expect("sync");
    // Read before the rows were: a batch then not committed appends to `active` or later.
    assert_eq!(log.drop_before(active, None).expect("drop"), 2, "no row names any segment");
    assert_eq!(files(&log), [4], "the segment being written stays");
    assert_eq!(log.drop_before(1, Some(4)).expect("drop"), 0, "never at or past the active one as read");
}

#[test]
fn more_bodies_than_one_vectored_write_takes_are_all_written_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_in(&dir);
    let bodies: Vec<Bytes> = (0..1500).map(|n| Bytes::from(format!("body {n}"))).collect();
    let places: Vec<PayloadRef> = bodies.iter().map(|body| log.append(body)).collect();
    log.sync().expect("sync");
    for (body, at) in bodies.iter().zip(places) {
        assert_eq!(read(log.dir(), at, &sha(body)).expect("read"), body.as_ref());
    }
}

#[test]
fn a_full_disk_under_the_log_is_a_full_disk_to_the_caller() {
    use crate::store::FailureKind;
    // ENOSPC and EDQUOT as the kernel reports them: the API answers 507, as for SQLite's own.
    for errno in [28, 122] {
        assert_eq!(StoreError::PayloadLog(io::Error::from_raw_os_error(errno)).kind(), FailureKind::DiskFull);
    }
    let refused = StoreError::PayloadLog(io::Error::from(io::ErrorKind::PermissionDenied));
    assert_eq!(refused.kind(), FailureKind::Unavailable, "anything else: retry later");
}
