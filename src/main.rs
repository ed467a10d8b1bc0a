//! `regmirror`: flags (and the `--config` file) → `Config` → logger → signal handlers →
//! `app::start` → one `LocalExecutor` running the server until SIGTERM/SIGINT.

use regmirror::cli::{self, Command, Parsed};
use regmirror::{app, cache::store::Store, logger, server};
use smol::LocalExecutor;
use std::process::ExitCode;
use std::rc::Rc;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let program = argv
        .first()
        .map_or("regmirror", |p| p.rsplit('/').next().unwrap_or(p));
    let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let command = match cli::parse(program, &args) {
        Ok(Parsed::Run(c)) => c,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Serve(s) => {
            let config = match s.into_config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{program}: {e}");
                    return ExitCode::from(2);
                }
            };
            logger::init(config.verbose);
            // Signal handlers first: a SIGTERM during start-up is then a clean stop too.
            let (hup, hups) = smol::channel::bounded(1);
            let stop = match server::signals::termination(hup) {
                Ok(f) => f,
                Err(e) => {
                    log::error!("cannot install signal handlers: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let executor = Rc::new(LocalExecutor::new());
            let (listener, mirror) = match app::start(&config, executor.clone()) {
                Ok(x) => x,
                Err(e) => {
                    log::error!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let reloading = mirror.clone();
            executor
                .spawn(async move {
                    while hups.recv().await.is_ok() {
                        reloading.reload();
                    }
                })
                .detach();
            // A start-up check that can only be made once the cache is indexed (the keep
            // list fits the budget) stops the mirror as a start-up error.
            let failing = mirror.clone();
            let stop = futures_lite::future::or(stop, async move {
                failing.failed().await;
                "a failed start-up check"
            });
            // Returns after SIGTERM/SIGINT, once replies in flight are done (or the grace
            // period is over): a requested stop is a success.
            smol::block_on(executor.run(server::serve(
                listener,
                mirror.clone(),
                server::Limits::from(&config),
                executor.clone(),
                stop,
            )));
            mirror.save_state();
            match mirror.failure() {
                // The keep list cannot fit the budget: a configuration that cannot work,
                // like a bad configuration file (exit 2: systemd does not restart it).
                Some(e) => {
                    log::error!("{e}");
                    ExitCode::from(2)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Command::Verify(v) => verify(&v.cache_dir()),
        Command::Ls(l) => match regmirror::ls::images(&l.cache_dir()) {
            Ok(images) => {
                print!(
                    "{}",
                    regmirror::ls::table(&images, std::time::SystemTime::now())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{program} ls: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Prefetch(p) => prefetch(program, p),
        Command::Tls(t) => match t.command {
            cli::TlsCommand::Init(init) => tls_init(program, init),
        },
    }
}

fn tls_init(program: &str, args: cli::TlsInitArgs) -> ExitCode {
    let req = match args.into_request() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program} tls init: {e}");
            return ExitCode::from(2);
        }
    };
    match regmirror::tls_init::run(&req, time::OffsetDateTime::now_utc()) {
        Ok(made) => {
            print!("{}", made.instructions);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program} tls init: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prefetch(program: &str, p: cli::PrefetchArgs) -> ExitCode {
    if p.images.is_empty() {
        eprintln!(
            "{program} prefetch: name at least one image, e.g. {program} prefetch alpine:3.20"
        );
        return ExitCode::from(2);
    }
    let outcome = regmirror::remote::Target::new(&p.mirror, &p.admin_token_file)
        .and_then(|t| regmirror::remote::prefetch(&t, &p.images, p.platform.as_deref()));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{program} prefetch: not every image could be fetched (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{program} prefetch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verify(dir: &std::path::Path) -> ExitCode {
    let store = match Store::open_existing(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("regmirror verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    match store.verify_all() {
        Ok(report) => {
            for d in &report.bad {
                println!("BAD {d} (deleted)");
            }
            for p in &report.strays {
                println!("STRAY {} (not a blob; left alone)", p.display());
            }
            println!(
                "{} blobs verified, {} bad, {} bytes hashed",
                report.good + report.bad.len() as u64,
                report.bad.len(),
                report.bytes
            );
            if report.bad.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("regmirror verify: {e}");
            ExitCode::FAILURE
        }
    }
}
