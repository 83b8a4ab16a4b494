//! The gRPC part of codegen: `spec/services.proto` (services, written by hand in protobuf's own
//! language because streams and oneofs have no TOML form) is copied to `proto/confer/v1/`, checked,
//! and turned into tonic servers and clients that use the model crate's messages, plus the encoded
//! descriptor set that server reflection serves.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use super::{SERVICES_SOURCE, proto};

/// The file name of the services in `proto/confer/v1/`.
pub const PROTO_NAME: &str = "services.proto";

/// Where the model crate's prost messages live, for the service code.
const MODEL_PROTO_PATH: &str = "::confer_model::proto";

/// `proto/confer/v1/services.proto`: the source with the generated header on top.
pub fn services_proto(source: &str, header: &str) -> String {
    let mut out = format!("{header}\n{source}");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn services_file(descriptors: &FileDescriptorSet) -> anyhow::Result<&FileDescriptorProto> {
    let name = format!("{}/{PROTO_NAME}", proto::DIR);
    descriptors
        .file
        .iter()
        .find(|file| file.name() == name)
        .with_context(|| format!("{name} is missing from the compiled descriptors"))
}

/// The line and column in `spec/services.proto` of a byte offset in its generated copy (which has
/// one header line more).
pub fn source_position(copy: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(copy.len());
    let before = &copy[..copy.floor_char_boundary(offset)];
    let line = before.matches('\n').count();
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line.max(1), column)
}

/// What protox does not check: the services are in package `confer.v1`, there is at least one,
/// and every service and RPC says what it does (reflection clients show these comments).
pub fn check(descriptors: &FileDescriptorSet) -> anyhow::Result<()> {
    let file = services_file(descriptors)?;
    if file.package() != proto::PACKAGE {
        bail!(
            "{SERVICES_SOURCE}: the package must be `{}`, not `{}`",
            proto::PACKAGE,
            file.package()
        );
    }
    if file.service.is_empty() {
        bail!("{SERVICES_SOURCE}: defines no service");
    }
    let documented = |path: &[i32]| {
        file.source_code_info.as_ref().is_some_and(|info| {
            info.location.iter().any(|location| {
                location.path == path
                    && location
                        .leading_comments
                        .as_deref()
                        .is_some_and(|comment| !comment.trim().is_empty())
            })
        })
    };
    // Field numbers of FileDescriptorProto.service (6) and ServiceDescriptorProto.method (2).
    for (i, service) in file.service.iter().enumerate() {
        let i = i32::try_from(i)?;
        if !documented(&[6, i]) {
            bail!(
                "{SERVICES_SOURCE}: service {} has no comment saying what it is",
                service.name()
            );
        }
        for (j, method) in service.method.iter().enumerate() {
            if !documented(&[6, i, 2, i32::try_from(j)?]) {
                bail!(
                    "{SERVICES_SOURCE}: rpc {}.{} has no comment saying what it does",
                    service.name(),
                    method.name()
                );
            }
        }
    }
    Ok(())
}

/// The tonic servers and clients of every service in the package; their messages are the model
/// crate's (`::confer_model::proto`), so this file holds services only.
pub fn service_code(descriptors: &FileDescriptorSet) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(format!(".{}", proto::PACKAGE), MODEL_PROTO_PATH)
        .out_dir(dir.path())
        .compile_fds(descriptors.clone())?;
    let code = std::fs::read_to_string(dir.path().join(format!("{}.rs", proto::PACKAGE)))?;
    Ok(format!(
        "//! The gRPC services of package `{}` (from `{SERVICES_SOURCE}`), as tonic generates\n\
         //! them: a `*_server` module with the trait to implement and a `*_client` module per\n\
         //! service.\n\n{code}",
        proto::PACKAGE
    ))
}

/// The descriptor set as a byte string, readable where it is text (names, comments).
pub fn descriptor_file(descriptors: &FileDescriptorSet) -> String {
    let bytes = descriptors.encode_to_vec();
    let mut out = format!(
        "//! The encoded `google.protobuf.FileDescriptorSet` of package `{}`: every file under\n\
         //! `proto/{}`, with comments, for server reflection. {} bytes.\n\n\
         /// The descriptor set, as `prost_types::FileDescriptorSet` encodes it.\n\
         pub const FILE_DESCRIPTOR_SET: &[u8] = b\"\\\n",
        proto::PACKAGE,
        proto::DIR,
        bytes.len()
    );
    out.push_str(&byte_string_body(&bytes));
    out.push_str("\";\n");
    out
}

/// The inside of a byte string literal holding `bytes`, in lines that end with a `\` continuation.
/// A continuation skips the whitespace that starts the next line, so a space there is escaped.
fn byte_string_body(bytes: &[u8]) -> String {
    const LINE: usize = 96;
    let mut out = String::new();
    let mut line = String::new();
    for &byte in bytes {
        match byte {
            b' ' if line.is_empty() => line.push_str("\\x20"),
            b'"' | b'\\' => {
                let _ = write!(line, "\\x{byte:02x}");
            }
            b' '..=b'~' => line.push(char::from(byte)),
            _ => {
                let _ = write!(line, "\\x{byte:02x}");
            }
        }
        if line.len() >= LINE {
            out.push_str(&line);
            out.push_str("\\\n");
            line.clear();
        }
    }
    out.push_str(&line);
    out
}

pub fn mod_file() -> String {
    "//! The generated part of the gRPC crate: the tonic services and clients of package\n\
     //! `confer.v1`, and the descriptor set that server reflection serves.\n\n\
     pub mod descriptor;\n\
     #[allow(clippy::all, clippy::pedantic, missing_docs)]\n\
     pub mod services;\n"
        .to_string()
}

#[cfg(test)]
pub mod tests_support {
    /// How rustc reads the inside of a byte string literal, for the escapes
    /// [`super::byte_string_body`] uses.
    pub fn unescape(body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(u8::try_from(c).unwrap());
                continue;
            }
            match chars.next() {
                Some('x') => {
                    let hex: String = [chars.next().unwrap(), chars.next().unwrap()]
                        .into_iter()
                        .collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap());
                }
                Some('\n') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                other => panic!("unexpected escape {other:?}"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::unescape;
    use super::*;

    #[test]
    fn a_byte_string_body_reads_back_as_the_same_bytes() {
        // Every byte value, spaces at line starts, quotes and backslashes.
        let mut bytes: Vec<u8> = (0..=255).collect();
        bytes.extend(std::iter::repeat_n(b' ', 300));
        bytes.extend(b"\"\\x\\\n end");
        let body = byte_string_body(&bytes);
        assert!(body.lines().all(|line| line.len() <= 100), "{body}");
        assert_eq!(unescape(&body), bytes);
    }
}
