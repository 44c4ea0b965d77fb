//! Answers a question about a video greedily and prints only the answer:
//!
//!     cargo run --example ask -- --model DIR --video FILE --frames 8 \
//!         --prompt "Why is this video funny?" --max-tokens 24

use std::io::Write;
use std::process::ExitCode;

use llavanext::*;

struct Args {
    model: String,
    video: String,
    frames: i32,
    prompt: String,
    max_tokens: i32,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a =
        Args { model: String::new(), video: String::new(), frames: 8, prompt: String::new(), max_tokens: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value()?,
            "--video" => a.video = value()?,
            "--frames" => a.frames = value()?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--prompt" => a.prompt = value()?,
            "--max-tokens" => a.max_tokens = value()?.parse().map_err(|e| format!("--max-tokens: {e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.model.is_empty() || a.video.is_empty() || a.prompt.is_empty() {
        return Err("usage: ask --model DIR --video FILE [--frames N] --prompt TEXT [--max-tokens N]".into());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    let frames = FrameSampler::open(&a.video)?.uniform(a.frames)?;
    let features = VisionEncoder::new(&model)?.encode_video(&frames)?;
    let embeddings = Pooler::new(&model)?.apply(&features)?;
    let messages = format!(
        r#"[{{"role":"user","content":[{{"type":"video"}},{{"type":"text","text":{}}}]}}]"#,
        json_string(&a.prompt)
    );
    let prompt = model.render_chat(&messages, true)?;
    let mut options = GeneratorOptions::greedy();
    if a.max_tokens > 0 {
        options = options.max_new_tokens(a.max_tokens);
    }
    let mut generator = Generator::with_options(&model, options)?;
    generator.append_prompt(&prompt, &[&embeddings])?;
    let mut out = std::io::stdout().lock();
    for piece in generator.pieces() {
        let _ = out.write_all(piece?.as_bytes());
        let _ = out.flush();
    }
    let _ = writeln!(out);
    Ok(())
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ask: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ask: {e}");
            ExitCode::FAILURE
        }
    }
}
