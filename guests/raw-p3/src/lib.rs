wit_bindgen::generate!({
    path: [
        "../wit/0.3.0/clocks.wit",
        "../wit/0.3.0/random.wit",
        "../wit/0.3.0/filesystem.wit",
        "../wit/0.3.0/sockets.wit",
        "../wit/0.3.0/cli.wit",
    ],
    inline: "
        package wasock:raw-p3-guests;

        world raw-p3 {
            import wasi:clocks/monotonic-clock@0.3.0;
            import wasi:sockets/types@0.3.0;
            import wasi:sockets/ip-name-lookup@0.3.0;
            export wasi:cli/run@0.3.0;
        }
    ",
    world: "wasock:raw-p3-guests/raw-p3",
    pub_export_macro: true,
    generate_all,
});
