//! std-spin: loops forever without waiting (a guest a host must be able to stop).

fn main() {
    println!("spinning");
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}
