fn main() {
    for p in std::env::args().skip(1) {
        let t = std::time::Instant::now();
        match cutrace_exporter::read_trace(std::path::Path::new(&p)) {
            Ok(tr) => println!(
                "{p}: {:?} k={} mc={} ms={} api={} sync={} ranges={} it={} dev={} thr={} base={} rank={} info={:?}",
                t.elapsed(),
                tr.kernels.len(),
                tr.memcpys.len(),
                tr.memsets.len(),
                tr.api_calls.len(),
                tr.syncs.len(),
                tr.ranges.len(),
                tr.iterations.len(),
                tr.devices.len(),
                tr.threads.len(),
                tr.base_time_ns,
                tr.info.rank,
                (&tr.info.pid, &tr.info.process_name, &tr.info.worker_name)
            ),
            Err(e) => println!("ERR {e}"),
        }
    }
}
