fn main() -> std::process::ExitCode {
    slashd::cli::main()
}
