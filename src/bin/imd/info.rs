//! `imd info [--json]`.

use imd::runtime::RuntimeInfo;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let info = RuntimeInfo::probe();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("imd {}", info.imd_version);
    println!("libtorch {} ({})", info.libtorch_version, info.libtorch_lib);
    println!(
        "libtorch_cuda linked: {}",
        if info.libtorch_cuda_linked {
            "yes"
        } else {
            "no (CPU-only libtorch)"
        }
    );
    println!("CUDA available: {}", yes_no(info.cuda_available));
    println!("cuDNN available: {}", yes_no(info.cudnn_available));
    if info.cuda_devices.is_empty() {
        println!("CUDA devices: none");
    }
    for d in &info.cuda_devices {
        println!("  {}", d.name);
    }
    println!("CPU threads: {}", info.cpu_threads);
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
