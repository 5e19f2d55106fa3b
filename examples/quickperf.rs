fn main() {
    for case in backprop::perf::cases() {
        let (m, t) = backprop::perf::time_case::<f32>(&case, 5, 20).unwrap();
        println!(
            "{:?} b{}: manual {:.1} us torch {:.1} us ratio {:.2}",
            case.widths,
            case.batch,
            m * 1e6,
            t * 1e6,
            t / m
        );
    }
}
