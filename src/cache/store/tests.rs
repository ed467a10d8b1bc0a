//! Unit tests of the store: commit, the start-up scan and `verify`, durable directories,
//! bounded small reads, an unwritable root.

use super::*;

const DAY: Duration = Duration::from_secs(86400);

fn open(dir: &Path) -> (Store, Vec<Partial>) {
    Store::open(dir, DAY).unwrap()
}

#[test]
fn commit_then_scan_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let d = Digest::of(b"hello");
    store.put_small(&d, b"hello").unwrap();
    assert!(store.has_blob(&d));
    assert_eq!(
        store.read_small(&d, 5).unwrap(),
        Small::Bytes(b"hello".to_vec())
    );
    let found: Vec<Found> = store.scan().unwrap().collect();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].digest, found[0].size), (d, 5));
    // Nothing left behind in tmp/.
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    let r = store.verify_all().unwrap();
    assert_eq!((r.good, r.bad.len()), (1, 0));
}

#[test]
fn a_new_blob_directory_is_made_durable() {
    // Issue 6, defect 23: the rename was fsynced, the mkdir before it was not.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let d = Digest::of(b"hello");
    store.put_small(&d, b"hello").unwrap();
    let prefix = store.blob_path(&d).parent().unwrap().to_path_buf();
    assert_eq!(
        *store.synced.borrow(),
        vec![store.blobs.clone(), prefix.clone()]
    );
    // A second blob in the same directory needs only the rename made durable.
    store.synced.borrow_mut().clear();
    let e = (0u32..)
        .map(|i| Digest::of(&i.to_le_bytes()))
        .find(|e| e.hex()[..2] == d.hex()[..2] && *e != d)
        .unwrap();
    store.put_small(&e, b"x").unwrap_or(());
    assert_eq!(*store.synced.borrow(), vec![prefix]);
}

#[test]
fn small_reads_never_read_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let d = Digest::of(b"0123456789");
    store.put_small(&d, b"0123456789").unwrap();
    assert_eq!(store.read_small(&d, 9).unwrap(), Small::TooBig(10));
    assert_eq!(
        store.read_small(&Digest::of(b"x"), 9).unwrap(),
        Small::Missing
    );
}

#[test]
fn verify_deletes_corrupt_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let d = Digest::of(b"hello");
    store.put_small(&d, b"hello").unwrap();
    fs::write(store.blob_path(&d), b"jello").unwrap();
    let r = store.verify_all().unwrap();
    assert_eq!(r.bad, vec![d]);
    assert!(!store.has_blob(&d));
}

#[test]
fn open_fails_clearly_on_unwritable_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    assert!(Store::open(&file, DAY).is_err());
}
