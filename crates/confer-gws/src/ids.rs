//! New ids the dialect makes up (the core creates none): call ids, connection ids and chat
//! participant ids, shaped like the ones GWS hands out.

use crate::error::GwsError;

fn random<const N: usize>() -> Result<[u8; N], GwsError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| GwsError::Internal(format!("no OS randomness: {e}")))?;
    Ok(bytes)
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A call id like `01RCC3N118B1V0SL8O7GK2LAES00000O`: 32 characters of base32hex (`0-9A-V`),
/// 160 random bits.
pub fn call_id() -> Result<String, GwsError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let bytes = random::<20>()?;
    let mut out = String::with_capacity(32);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 31) as usize;
            out.push(char::from(ALPHABET[index]));
        }
        buffer &= (1 << bits) - 1;
    }
    Ok(out)
}

/// A connection id like `0071027198180018`: 16 hex digits.
pub fn conn_id() -> Result<String, GwsError> {
    Ok(hex_upper(&random::<8>()?))
}

/// A chat participant id like `00AF52FCF0C10030`: 16 hex digits.
pub fn participant_id() -> Result<String, GwsError> {
    Ok(hex_upper(&random::<8>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_gws_shapes() {
        let id = call_id().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'V').contains(&b))
        );
        assert_ne!(id, call_id().unwrap());
        let conn = conn_id().unwrap();
        assert_eq!(conn.len(), 16);
        assert!(conn.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(participant_id().unwrap().len(), 16);
    }
}
