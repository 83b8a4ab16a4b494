//! The `confer` server binary. The server itself arrives with the engine issue; for now it only
//! says what it is.

fn main() {
    println!("confer {}", env!("CARGO_PKG_VERSION"));
}
