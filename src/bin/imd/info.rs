//! `imd info [--json]`.

use imd::model::runtime::RuntimeInfo;

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
    let l = &info.libtorch_loaded;
    if !l.lib_dir.is_empty() {
        println!(
            "libtorch loaded: {} ({}, git {})",
            l.version.as_deref().unwrap_or("version unknown"),
            l.lib_dir,
            l.git_version.as_deref().unwrap_or("unknown")
        );
    }
    println!("CUDA available: {}", yes_no(info.cuda_available));
    println!("cuDNN available: {}", yes_no(info.cudnn_available));
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    println!(
        "CUDA runtime {}, cuDNN {}, driver {}",
        or_none(&info.cuda_runtime_version),
        or_none(&info.cudnn_version),
        or_none(&info.cuda_driver_version)
    );
    if info.cuda_devices.is_empty() {
        println!("CUDA devices: none");
    }
    for d in &info.cuda_devices {
        println!(
            "  cuda:{} {} ({:.1} GiB)",
            d.index,
            d.name,
            d.total_memory_bytes as f64 / (1u64 << 30) as f64
        );
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
