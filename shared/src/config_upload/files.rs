//! The local side of config-upload: which files the arguments name, the key each one gets,
//! and each file's size and SHA-256 (whole file, and per part when it goes up in parts).
//!
//! Everything here runs before the first AWS call, so a missing or unreadable file stops the
//! step with exit 2 while nothing has been created. File contents are read only to be hashed;
//! they are never formatted into a message.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The largest object S3 stores, and the most parts one multipart upload may have.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;
/// S3 (and moto) reject parts smaller than this, except the last one.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// One local file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its key relative to the prefix: the file name for a FILE argument, the path below the
    /// directory (with '/') for a file found in a DIR argument.
    pub rel: String,
    pub size: u64,
    /// SHA-256 of the whole file, lower-case hex (kept as object metadata).
    pub sha256_hex: String,
    /// SHA-256 of the whole file, base64 (S3's `x-amz-checksum-sha256`).
    pub sha256_b64: String,
    /// When the file goes up in parts: the part size and each part's SHA-256 (base64).
    pub parts: Option<Parts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    pub size: u64,
    pub sha256_b64: Vec<String>,
}

/// Files found for the arguments, or every problem found with them.
pub fn collect(
    args: &[PathBuf],
    multipart_threshold: u64,
    part_size: u64,
) -> Result<Vec<LocalFile>, Vec<String>> {
    let mut problems = Vec::new();
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    for arg in args {
        match std::fs::metadata(arg) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(format!(
                "'{}' does not exist: pass an existing file or directory",
                arg.display()
            )),
            Err(e) => problems.push(format!("'{}' cannot be read: {e}", arg.display())),
            Ok(meta) if meta.is_dir() => walk(arg, arg, &mut found, &mut problems),
            Ok(meta) if meta.is_file() => match arg.file_name().and_then(|n| n.to_str()) {
                Some(name) => found.push((arg.clone(), name.to_string())),
                None => problems.push(format!(
                    "'{}' has no file name that is valid UTF-8, so it cannot be an S3 key",
                    arg.display()
                )),
            },
            Ok(_) => problems.push(format!(
                "'{}' is neither a regular file nor a directory",
                arg.display()
            )),
        }
    }

    // Two arguments that give the same key would overwrite each other: refuse.
    let mut seen: std::collections::BTreeMap<&str, &Path> = Default::default();
    for (path, rel) in &found {
        if let Some(first) = seen.insert(rel, path) {
            problems.push(format!(
                "'{}' and '{}' would both be uploaded as '{rel}': rename one or upload them to different prefixes",
                first.display(),
                path.display()
            ));
        }
    }
    if args.is_empty() || (found.is_empty() && problems.is_empty()) {
        problems.push(
            "no files to upload: pass one or more FILE or DIR arguments (directories must contain files)"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut files = Vec::with_capacity(found.len());
    for (path, rel) in found {
        match inspect(&path, rel, multipart_threshold, part_size) {
            Ok(f) => files.push(f),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(files)
    } else {
        Err(problems)
    }
}

/// The files below `dir`, recursively, with keys relative to `root`. Symbolic links to files
/// are followed; symbolic links to directories are not (they could loop), and are reported.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(PathBuf, String)>, problems: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("directory '{}' cannot be read: {e}", dir.display()));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let is_link = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("'{}' cannot be read: {e}", path.display()));
                continue;
            }
        };
        if meta.is_dir() {
            if is_link {
                problems.push(format!(
                    "'{}' is a symbolic link to a directory, which is not followed: pass the directory itself",
                    path.display()
                ));
            } else {
                walk(root, &path, found, problems);
            }
        } else if meta.is_file() {
            match relative_key(root, &path) {
                Some(rel) => found.push((path, rel)),
                None => problems.push(format!(
                    "'{}' has a name that is not valid UTF-8, so it cannot be an S3 key",
                    path.display()
                )),
            }
        }
    }
}

/// `root/a/b.txt` -> `a/b.txt`, with '/' whatever the platform.
fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Opens, sizes and hashes one file. The error names the file and never its contents.
fn inspect(
    path: &Path,
    rel: String,
    multipart_threshold: u64,
    part_size: u64,
) -> Result<LocalFile, String> {
    let unreadable = |e: std::io::Error| {
        format!(
            "'{}' cannot be read ({e}): check its permissions",
            path.display()
        )
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > MAX_OBJECT_SIZE {
        return Err(format!(
            "'{}' is {size} bytes, more than the 5 TiB S3 stores in one object",
            path.display()
        ));
    }
    let part = (size > 0 && size >= multipart_threshold).then(|| part_size_for(size, part_size));

    let mut whole = Sha256::new();
    let mut current = Sha256::new();
    let mut in_part = 0u64;
    let mut part_sums = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        whole.update(&buf[..n]);
        if let Some(part) = part {
            let mut chunk = &buf[..n];
            while !chunk.is_empty() {
                let take = ((part - in_part) as usize).min(chunk.len());
                current.update(&chunk[..take]);
                in_part += take as u64;
                chunk = &chunk[take..];
                if in_part == part {
                    part_sums.push(b64(&std::mem::take(&mut current).finalize()));
                    in_part = 0;
                }
            }
        }
    }
    if total != size {
        return Err(format!(
            "'{}' changed while it was being read ({size} bytes, then {total}): run again when it is written",
            path.display()
        ));
    }
    if part.is_some() && in_part > 0 {
        part_sums.push(b64(&current.finalize()));
    }
    let digest = whole.finalize();
    Ok(LocalFile {
        path: path.to_path_buf(),
        rel,
        size,
        sha256_hex: hex::encode(digest),
        sha256_b64: b64(&digest),
        parts: part.map(|size| Parts {
            size,
            sha256_b64: part_sums,
        }),
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The part size for a file: the one asked for, raised (to whole MiB) when the file would
/// otherwise need more than 10,000 parts.
pub fn part_size_for(file_size: u64, wanted: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    if file_size.div_ceil(wanted.max(1)) <= MAX_PARTS {
        return wanted;
    }
    file_size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB
}

/// Parses a size such as `8MiB`, `5M`, `10MB`, `1048576`: K/M/G and KiB/MiB/GiB are powers
/// of 1024, KB/MB/GB powers of 1000.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size: use bytes or a unit such as 8MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "'{s}': unknown unit '{other}' (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A content type for a key: by extension, with the Java-style `.properties` (and the vendor's
/// `.slpropz`) spelled out since the guess tables do not know them.
pub fn content_type(key: &str) -> String {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("properties") | Some("env") | Some("conf") | Some("cfg") => {
            "text/plain; charset=utf-8".to_string()
        }
        Some("slpropz") => "application/octet-stream".to_string(),
        _ => mime_guess::from_path(key)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("5M"), Ok(5 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("8 parsecs").is_err());
    }

    #[test]
    fn part_size_grows_past_ten_thousand_parts() {
        assert_eq!(part_size_for(100 << 20, 8 << 20), 8 << 20);
        let huge = 1u64 << 40; // 1 TiB needs parts of at least 105 MiB
        let p = part_size_for(huge, 8 << 20);
        assert!(huge.div_ceil(p) <= MAX_PARTS, "{p}");
        assert_eq!(p % (1 << 20), 0);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("p/global.properties"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("a.json"), "application/json");
        assert_eq!(content_type("x.slpropz"), "application/octet-stream");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn directories_give_relative_keys_and_parts_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf/sub")).unwrap();
        std::fs::write(dir.path().join("conf/a.properties"), b"a=1\n").unwrap();
        std::fs::write(dir.path().join("conf/sub/b.json"), vec![7u8; 10]).unwrap();
        std::fs::write(dir.path().join("single.txt"), b"").unwrap();
        let files = collect(
            &[dir.path().join("conf"), dir.path().join("single.txt")],
            8,
            4,
        )
        .unwrap();
        let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a.properties", "single.txt", "sub/b.json"]);
        // Empty and small files go up whole; a 10-byte file over an 8-byte threshold in
        // 4-byte parts has three parts (4, 4, 2).
        assert!(files[0].parts.is_none());
        assert!(files[1].parts.is_none());
        let parts = files[2].parts.as_ref().unwrap();
        assert_eq!(parts.sha256_b64.len(), 3);
        assert_eq!(parts.sha256_b64[0], b64(&Sha256::digest([7u8; 4])));
        assert_eq!(parts.sha256_b64[2], b64(&Sha256::digest([7u8; 2])));
        assert_eq!(files[2].sha256_hex, hex::encode(Sha256::digest([7u8; 10])));
    }

    #[test]
    fn every_problem_is_reported_and_none_shows_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.properties"), b"password=hunter2\n").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x.properties"), b"password=hunter2\n").unwrap();
        let problems = collect(
            &[
                dir.path().join("missing.properties"),
                dir.path().join("x.properties"),
                dir.path().join("d"),
            ],
            1 << 20,
            5 << 20,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("missing.properties") && problems[0].contains("does not exist")
        );
        assert!(problems[1].contains("would both be uploaded as 'x.properties'"));
        assert!(!problems.join("\n").contains("hunter2"));
        assert!(collect(&[], 1, 1).is_err());
        assert!(collect(&[dir.path().join("d/../d")], 1 << 20, 5 << 20).is_ok());
    }
}
