//! `check`: verify a backpropagation written elsewhere from its trace, against libtorch.
//! Exit status: 0 equivalent, 1 not equivalent, 2 a trace that cannot be checked, 3 agreed until
//! both sides went non-finite.

fn main() {
    std::process::exit(backprop::commands::check::main_check());
}
