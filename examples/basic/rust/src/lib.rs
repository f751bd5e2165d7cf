//! The "basic" Function Stream example in Rust: reads a person
//! `{"name":"rbt","money":2}` and outputs it with one more money,
//! `{"name":"rbt","money":3,"expected":0}` (see README.md).

mod person;

/// One input, one record; any malformed input fails with the reason.
fn basic(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut person = person::parse(input).map_err(|e| e.to_string())?;
    person.money = person
        .money
        .checked_add(1)
        .ok_or_else(|| "malformed input: \"money\" + 1 overflows a 64-bit integer".to_string())?;
    let mut out = Vec::with_capacity(person.name.len() + 64);
    person.write_json(&mut out);
    Ok(out)
}

function_stream::export!(basic);
