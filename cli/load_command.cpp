// headroom load: the open-loop load generator (calibrate/load/open_loop_generator) and its reports;
// `headroom load merge` combines JSON reports from several machines into one.
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "commands.hpp"
#include "cpu_split_options.hpp"
#include "duration_flag.hpp"
#include "json_output.hpp"
#include "load_report.hpp"
#include "local_processes.hpp"
#include "open_loop_generator.hpp"
#include "request_options.hpp"
#include "target_url.hpp"

namespace headroom::cli {
namespace cal = headroom::calibrate;

namespace {

// Report files beside the text; --json follows the convention of every headroom command.
struct output_files {
  json_output json;
  std::string hdr, csv;
};

struct load_args {
  std::vector<std::string> targets;
  double rate = 0;
  bool rate_given = false;
  std::optional<double> duration;  // seconds, like every duration below
  std::string steps;
  std::optional<double> step_duration;
  std::string ramp;
  double warmup = 0;
  std::string arrivals = "uniform";
  int max_connections = 100;
  int threads = 1;
  double timeout = 10;
  std::string method = "GET";
  std::vector<std::string> headers;
  std::string body_file;
  std::uint64_t seed = 1;
  output_files out;
  std::vector<std::string> merge_inputs;
  cpu_split_args cpus;
};

// Opened (or checked) before the run, so a typo in a path costs nothing and a long run is never
// lost.
struct open_outputs {
  std::ofstream hdr, csv;
};

void open_for_writing(std::ofstream& f, const std::string& path) {
  if (path.empty()) return;
  f.open(path);
  if (!f) throw cal::load_input_error("cannot write " + path);
}

open_outputs open_all(const output_files& paths) {
  try {
    check_writable(paths.json);
  } catch (const std::runtime_error& e) {
    throw cal::load_input_error(e.what());
  }
  open_outputs files;
  open_for_writing(files.hdr, paths.hdr);
  open_for_writing(files.csv, paths.csv);
  return files;
}

void save(const cal::load_result& r, const output_files& paths, open_outputs& files) {
  if (!paths.json.to_stdout()) std::cout << cal::text_report(r) << std::flush;
  write_json(paths.json, cal::to_json(r));
  if (!paths.hdr.empty()) cal::write_percentile_distribution(files.hdr, r.latency);
  if (!paths.csv.empty()) cal::write_per_second_csv(files.csv, r);
  for (auto* f : {&files.hdr, &files.csv})
    if (f->is_open()) {
      f->flush();
      if (!*f) throw std::runtime_error("writing a report file failed");
    }
}

cal::load_schedule build_schedule(const load_args& a) {
  int kinds = (a.rate_given ? 1 : 0) + (!a.steps.empty() ? 1 : 0) + (!a.ramp.empty() ? 1 : 0);
  if (kinds == 0) throw cal::load_input_error("give --rate, --steps or --ramp");
  if (kinds > 1) throw cal::load_input_error("give only one of --rate, --steps, --ramp");
  try {
    cal::load_schedule s = cal::load_schedule::constant(1, 1);
    if (!a.steps.empty()) {
      if (!a.step_duration) throw cal::load_input_error("--steps needs --step-duration");
      s = cal::load_schedule::steps(cal::parse_rate_list(a.steps), *a.step_duration);
    } else {
      if (!a.duration) throw cal::load_input_error("--duration is needed");
      double d = *a.duration;
      if (!a.ramp.empty()) {
        auto colon = a.ramp.find(':');
        if (colon == std::string::npos)
          throw cal::load_input_error("--ramp is FROM:TO, e.g. 100:3000");
        auto from = cal::parse_rate_list(a.ramp.substr(0, colon));
        auto to = cal::parse_rate_list(a.ramp.substr(colon + 1));
        if (from.size() != 1 || to.size() != 1)
          throw cal::load_input_error("--ramp is FROM:TO, e.g. 100:3000");
        s = cal::load_schedule::ramp(from[0], to[0], d);
      } else {
        s = cal::load_schedule::constant(a.rate, d);
      }
    }
    return s.with_warmup(a.warmup);
  } catch (const cal::load_input_error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw cal::load_input_error(e.what());
  }
}

int run_load(const load_args& a) {
  cal::load_options o;
  o.targets = a.targets;
  o.schedule = build_schedule(a);
  try {
    o.arrivals = cal::parse_arrival_process(a.arrivals);
  } catch (const std::invalid_argument& e) {
    throw cal::load_input_error(e.what());
  }
  o.timeout = a.timeout;
  o.threads = a.threads;
  o.max_connections = a.max_connections;
  o.method = a.method;
  o.seed = a.seed;
  for (const auto& h : a.headers) o.headers.push_back(parse_header(h));
  if (!a.body_file.empty()) o.body = read_body_file(a.body_file);
  o.handle_signals = true;

  cal::open_loop_generator generator(o);
  open_outputs files = open_all(a.out);
  generator.check_reachable();
  // --target-cpus: the process behind the first target and this machine's one PostgreSQL.
  pid_t service_pid = 0, postmaster_pid = 0;
  if (!(a.cpus.generator_cpus.empty() && a.cpus.target_cpus.empty())) {
    const cal::http_target t = cal::parse_target_url(o.targets.front());
    if (cal::is_local_host(t.host)) {
      service_pid = cal::listening_pid(static_cast<unsigned short>(std::stoi(t.port)));
      const auto pms = cal::postmaster_pids();
      if (pms.size() == 1) postmaster_pid = pms.front();
    }
  }
  const cpu_split_guard pinned(a.cpus, service_pid, postmaster_pid, "headroom load");

  std::function<void(const cal::load_progress&)> progress;
  bool tty = isatty(STDERR_FILENO) == 1;
  if (tty) {
    progress = [](const cal::load_progress& p) {
      // Rate and p99 are those of the last whole second, so there are none before it ends.
      char last_second[64] = "      -  rps  p99         - ms";
      if (p.elapsed >= 1)
        std::snprintf(last_second, sizeof last_second, "%8.1f rps  p99 %9.3f ms", p.rate,
                      p.p99 * 1e3);
      std::fprintf(stderr, "\r%s %7.1f s  %s  sent %llu  done %llu  errors %llu   ",
                   p.elapsed < 0 ? "warmup" : "load  ", p.elapsed, last_second,
                   static_cast<unsigned long long>(p.sent),
                   static_cast<unsigned long long>(p.completed),
                   static_cast<unsigned long long>(p.failed));
      std::fflush(stderr);
    };
  }
  cal::load_result r = generator.run(progress);
  if (tty) std::fprintf(stderr, "\n");
  save(r, a.out, files);
  return r.interrupted ? 130 : 0;
}

int run_merge(const load_args& a) {
  if (a.merge_inputs.size() < 1) throw cal::load_input_error("merge needs JSON reports");
  open_outputs files = open_all(a.out);
  std::unique_ptr<cal::load_result> merged;
  for (const auto& path : a.merge_inputs) {
    std::ifstream in(path);
    if (!in) throw cal::load_input_error("cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto value = boost::json::parse(text.str(), ec);
    if (ec) throw cal::load_input_error(path + ": not JSON (" + ec.message() + ")");
    cal::load_result r;
    try {
      r = cal::from_json(value);
    } catch (const std::invalid_argument& e) {
      throw cal::load_input_error(path + ": " + e.what());
    }
    if (!merged)
      merged = std::make_unique<cal::load_result>(std::move(r));
    else
      cal::merge_into(*merged, r);
  }
  save(*merged, a.out, files);
  return 0;
}

void add_outputs(CLI::App* app, output_files& out, const std::string& what) {
  add_json_option(app, out.json, what + ": every figure and the histograms (lossless, mergeable)");
  app->add_option("--hdr", out.hdr,
                  "Write the successful requests' latency percentile distribution (HdrHistogram "
                  "format, ms) to FILE")
      ->type_name("FILE");
  app->add_option("--csv", out.csv,
                  "Write one row per second to FILE: sent, completed (requests), p50_s, p99_s "
                  "(successes, seconds), errors (requests)")
      ->type_name("FILE");
}

}  // namespace

void add_load_command(CLI::App& app) {
  auto args = std::make_shared<load_args>();
  auto* sub = app.add_subcommand(
      "load",
      "Open-loop HTTP load generator: latency from intended send times, no coordinated omission");
  sub->add_option("--target", args->targets, "URL http://host:port/path (repeat: round-robin)")
      ->type_name("URL");
  auto* rate = sub->add_option("--rate", args->rate, "Requests per second (rps; with --duration)")
                   ->type_name("RPS");
  add_duration_flag(sub, "--duration", args->duration, "Length of the run");
  sub->add_option("--steps", args->steps,
                  "Step rates in rps, comma-separated, e.g. 50,500,1000 (with --step-duration)");
  add_duration_flag(sub, "--step-duration", args->step_duration, "Length of each step");
  sub->add_option("--ramp", args->ramp,
                  "Linear ramp FROM:TO in rps over --duration, e.g. 100:3000");
  add_duration_flag(sub, "--warmup", args->warmup,
                    "Sent at the first rate before measuring, left out of every figure");
  sub->add_option("--arrivals", args->arrivals, "uniform (evenly spaced) or poisson")
      ->capture_default_str();
  sub->add_option("--max-connections", args->max_connections,
                  "Keep-alive connections, at most, over all threads (connections)")
      ->capture_default_str();
  sub->add_option("--threads", args->threads, "Generator threads (threads)")->capture_default_str();
  add_duration_flag(sub, "--timeout", args->timeout,
                    "One deadline per request from its send: connect, write and read together");
  sub->add_option("--method", args->method, "HTTP method")->capture_default_str();
  sub->add_option("--header", args->headers, "'Name: value' (repeatable)");
  sub->add_option("--body", args->body_file, "Request body from FILE (bytes, sent as they are)")
      ->type_name("FILE");
  sub->add_option("--seed", args->seed, "Seed for Poisson arrivals (integer)")
      ->capture_default_str();
  add_cpu_split_options(sub, args->cpus);
  add_outputs(sub, args->out, "The run");

  auto* merge = sub->add_subcommand("merge", "Merge JSON reports of runs made at the same time");
  merge->add_option("reports", args->merge_inputs, "JSON reports from headroom load --json")
      ->required();
  auto merge_out = std::make_shared<output_files>();
  add_outputs(merge, *merge_out, "The merged report");
  merge->callback([args, merge_out] {
    try {
      load_args a = *args;
      a.out = *merge_out;
      set_exit_code(run_merge(a));
    } catch (const cal::load_input_error& e) {
      std::cerr << "headroom load merge: " << e.what() << "\n";
      set_exit_code(2);
    }
  });

  sub->callback([args, merge, rate] {
    if (merge->parsed()) return;  // the merge callback did the work
    try {
      args->rate_given = rate->count() > 0;
      if (args->targets.empty()) throw cal::load_input_error("at least one --target is needed");
      set_exit_code(run_load(*args));
    } catch (const cal::load_input_error& e) {
      std::cerr << "headroom load: " << e.what() << "\n";
      set_exit_code(2);
    }
  });
}

}  // namespace headroom::cli
