//! One SQLite file per instance holds its WhatsApp keys and session state, so logging out or
//! deleting an instance is deleting that file.
use std::path::{Path, PathBuf};

/// `<data dir>/whatsapp-web/<instance id>.db`. Instance ids are generated (`inst_` + ULID);
/// anything else is refused so an id can never point outside the folder.
pub fn store_path(dir: &Path, instance_id: &str) -> Option<PathBuf> {
    let safe = !instance_id.is_empty()
        && instance_id.len() <= 64
        && instance_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    safe.then(|| dir.join(format!("{instance_id}.db")))
}

/// Removes the store and SQLite's journal files beside it. A missing file is not an error.
pub fn delete(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder() {
        let dir = Path::new("/data/whatsapp-web");
        assert_eq!(store_path(dir, "inst_01J0ABC").unwrap(), Path::new("/data/whatsapp-web/inst_01J0ABC.db"));
        for bad in ["", "../master", "a/b", "inst.db", &"x".repeat(65)] {
            assert_eq!(store_path(dir, bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn delete_removes_a_real_store_and_its_journals() {
        let dir = std::env::temp_dir().join(format!("wag-ww-store-{}", crate::ids::new_id("t")));
        std::fs::create_dir_all(&dir).unwrap();
        let path = store_path(&dir, "inst_store_test").unwrap();
        // The crate's own store creates the file (and its WAL) as it would for a linked device.
        let store = whatsapp_rust::store::SqliteStore::new(path.to_str().unwrap()).await.unwrap();
        drop(store);
        assert!(path.exists());
        std::fs::write(format!("{}-wal", path.display()), b"x").unwrap();
        delete(&path).unwrap();
        assert!(!path.exists());
        assert!(!PathBuf::from(format!("{}-wal", path.display())).exists());
        delete(&path).expect("deleting twice is fine");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
