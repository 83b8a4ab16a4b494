//! Prints Confer's OpenAPI document (what `GET /openapi.json` serves) as the committed file holds
//! it. `cargo xtask openapi` writes it to `openapi/confer.json`; `--check` compares.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let text = confer::openapi::document_json()?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
