//! std-cli: what `wasock run` passes through besides sockets. Prints its arguments, the
//! variable `GREETING`, the first line of `/data/hello.txt` when that preopen exists and a line
//! read from stdin when argv[1] is `stdin`; exits with the code in argv[2] (default 0).

use std::io::BufRead;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("args: {}", args[1..].join(" "));
    println!(
        "GREETING={}",
        std::env::var("GREETING").unwrap_or_else(|_| "<unset>".into())
    );
    match std::fs::read_to_string("/data/hello.txt") {
        Ok(text) => println!("file: {}", text.lines().next().unwrap_or_default()),
        Err(e) => println!("file: <{}>", e.kind()),
    }
    if args.get(1).map(String::as_str) == Some("stdin") {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        println!("stdin: {}", line.trim_end());
    }
    eprintln!("to stderr");
    let code = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(0);
    std::process::exit(code);
}
