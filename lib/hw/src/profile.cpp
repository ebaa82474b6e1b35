#include "haq/hw/profile.h"

#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "haq/core/files.h"

namespace haq::hw {

const char* to_string(Architecture a) {
  switch (a) {
    case Architecture::bit_serial: return "bit-serial";
    case Architecture::bit_fusion: return "bit-fusion";
    case Architecture::table: return "table";
  }
  return "?";
}

namespace {

constexpr const char* kSchema = "haq.hardware/1";
// Upper bounds that keep the simulators' products of sizes, bits and trip
// counts inside int64 (and far above any real accelerator): 2^40 bits
// (128 GiB) a buffer, 2^24 DRAM bits per cycle, 1e9 pJ per cycle or bit.
constexpr int64_t kMaxBufferBits = int64_t{1} << 40;
constexpr int64_t kMaxDramBitsPerCycle = int64_t{1} << 24;
constexpr double kMaxEnergyPj = 1e9;
// 2^32 cycles of overhead per layer or tile (seconds at any clock) is far above any device.
constexpr int64_t kMaxOverheadCycles = int64_t{1} << 32;

BitRange read_range(const JsonValue& v) {
  auto a = v.array(2, 2);
  BitRange r;
  r.min_bits = static_cast<int>(a[0].as_int(1, 8));
  r.max_bits = static_cast<int>(a[1].as_int(1, 8));
  if (r.min_bits > r.max_bits)
    v.fail(fmt::format("expected [min, max] with min <= max, got [{}, {}]", r.min_bits, r.max_bits));
  return r;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(trim(cell));
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

double parse_csv_number(const std::string& cell, const std::string& file, int line,
                        const char* column, bool allow_zero) {
  double x = 0;
  size_t used = 0;
  try {
    x = std::stod(cell, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != cell.size() || !std::isfinite(x) || x < 0 || (!allow_zero && x == 0))
    fail(ErrorKind::profile, file, fmt::format("line {}", line), "column {}: expected a {} number, got '{}'",
         column, allow_zero ? "non-negative" : "positive", cell);
  return x;
}

// Reads "layer,w_bits,a_bits,latency_s[,energy_pj]" rows.
void read_table_csv(TableSpec& t, const BitRange& wr, const BitRange& ar) {
  std::string text = read_file(t.csv);
  std::stringstream ss(text);
  std::string line;
  int line_no = 0;
  bool header_seen = false;
  while (std::getline(ss, line)) {
    ++line_no;
    std::string s = trim(line);
    if (s.empty() || s[0] == '#') continue;
    auto cells = split_csv_line(s);
    std::string where = fmt::format("line {}", line_no);
    if (!header_seen) {
      std::vector<std::string> base{"layer", "w_bits", "a_bits", "latency_s"};
      auto with_energy = base;
      with_energy.push_back("energy_pj");
      if (cells == base) t.has_energy = false;
      else if (cells == with_energy) t.has_energy = true;
      else
        fail(ErrorKind::profile, t.csv, where,
             "expected the header 'layer,w_bits,a_bits,latency_s' or "
             "'layer,w_bits,a_bits,latency_s,energy_pj', got '{}'", s);
      header_seen = true;
      continue;
    }
    size_t want = t.has_energy ? 5 : 4;
    if (cells.size() != want)
      fail(ErrorKind::profile, t.csv, where, "expected {} columns, got {}", want, cells.size());
    if (cells[0].empty()) fail(ErrorKind::profile, t.csv, where, "empty layer name");
    int bits[2];
    for (int i = 0; i < 2; ++i) {
      const std::string& c = cells[1 + i];
      const BitRange& r = i == 0 ? wr : ar;
      if (c.size() != 1 || c[0] < '1' || c[0] > '8' || !r.contains(c[0] - '0'))
        fail(ErrorKind::profile, t.csv, where, "column {}: expected an integer in {}..{} (the profile's /precision), got '{}'",
             i == 0 ? "w_bits" : "a_bits", r.min_bits, r.max_bits, c);
      bits[i] = c[0] - '0';
    }
    TableSpec::Entry e;
    e.latency_s = parse_csv_number(cells[3], t.csv, line_no, "latency_s", false);
    if (t.has_energy) e.energy_pj = parse_csv_number(cells[4], t.csv, line_no, "energy_pj", true);
    auto key = std::make_tuple(cells[0], bits[0], bits[1]);
    if (!t.entries.emplace(key, e).second)
      fail(ErrorKind::profile, t.csv, where, "duplicate row for layer '{}' w{}a{}", cells[0], bits[0], bits[1]);
  }
  if (!header_seen) fail(ErrorKind::profile, t.csv, "", "empty table: expected a header and rows");
}

}  // namespace

HardwareProfile profile_from_json(const JsonValue& root, const std::string& dir) {
  HardwareProfile p;
  p.file = root.file();
  JsonObject o = root.object();
  std::string schema = o.get("schema").as_string();
  if (schema != kSchema)
    o.fail_at("schema", fmt::format("expected \"{}\", got \"{}\"", kSchema, schema));
  p.name = o.get("name").as_string(true);
  p.description = o.get("description").as_string();
  p.sources = o.get("sources").as_string_array(1);
  std::string arch = o.get("architecture").as_enum({"bit-serial", "bit-fusion", "table"});
  p.architecture = arch == "bit-serial"   ? Architecture::bit_serial
                   : arch == "bit-fusion" ? Architecture::bit_fusion
                                          : Architecture::table;
  p.batch = o.get("batch").as_int(1, 1 << 20);
  {
    // A clock outside 1 kHz .. 1 THz is a typo (or 5e-324, whose cycle time is inf).
    const JsonValue clock = o.get("clock_mhz");
    p.clock_mhz = clock.as_number_above(0.0);
    if (p.clock_mhz < 1e-3 || p.clock_mhz > 1e6)
      clock.fail(fmt::format("expected a clock in MHz between 0.001 (1 kHz) and 1e6 (1 THz), got {}", p.clock_mhz));
  }
  {
    JsonObject prec = o.get("precision").object();
    p.w_bits = read_range(prec.get("w_bits"));
    p.a_bits = read_range(prec.get("a_bits"));
    prec.finish();
  }

  // Sections that only some architectures use: required for them, rejected
  // elsewhere (a stray section is almost always a copy-paste mistake).
  auto section = [&](const char* key, bool wanted) -> std::optional<JsonObject> {
    if (wanted) return o.get(key).object();
    o.allow(key);
    if (o.has(key))
      o.fail_at(key, fmt::format("not used with architecture \"{}\"", arch));
    return std::nullopt;
  };
  bool simulated = p.architecture != Architecture::table;
  if (auto m = section("memory", simulated)) {
    p.memory.dram_bits_per_cycle = m->get("dram_bits_per_cycle").as_int(1, kMaxDramBitsPerCycle);
    p.memory.weight_buffer_bits = m->get("weight_buffer_bits").as_int(1, kMaxBufferBits);
    p.memory.input_buffer_bits = m->get("input_buffer_bits").as_int(1, kMaxBufferBits);
    p.memory.output_buffer_bits = m->get("output_buffer_bits").as_int(1, kMaxBufferBits);
    p.memory.accumulator_bits = m->get("accumulator_bits").as_int(1, 64);
    p.memory.output_bits = m->get("output_bits").as_int(1, 32);
    m->finish();
  }
  if (auto e = section("energy", simulated)) {
    p.energy.core_pj_per_cycle = e->get("core_pj_per_cycle").as_number(0.0, kMaxEnergyPj);
    p.energy.sram_weight_pj_per_bit = e->get("sram_weight_pj_per_bit").as_number(0.0, kMaxEnergyPj);
    p.energy.sram_input_pj_per_bit = e->get("sram_input_pj_per_bit").as_number(0.0, kMaxEnergyPj);
    p.energy.sram_output_pj_per_bit = e->get("sram_output_pj_per_bit").as_number(0.0, kMaxEnergyPj);
    p.energy.dram_pj_per_bit = e->get("dram_pj_per_bit").as_number(0.0, kMaxEnergyPj);
    e->finish();
  }
  if (simulated) {
    // Optional: a profile written before the field existed has no overheads.
    o.allow("overhead");
    if (o.has("overhead")) {
      JsonObject ov = o.get("overhead").object();
      ov.allow("cycles_per_layer");
      ov.allow("cycles_per_tile");
      if (ov.has("cycles_per_layer")) p.overhead.cycles_per_layer = ov.get("cycles_per_layer").as_int(0, kMaxOverheadCycles);
      if (ov.has("cycles_per_tile")) p.overhead.cycles_per_tile = ov.get("cycles_per_tile").as_int(0, kMaxOverheadCycles);
      ov.finish();
    }
  } else {
    section("overhead", false);
  }
  if (auto s = section("bit_serial", p.architecture == Architecture::bit_serial)) {
    p.bit_serial.dm = s->get("dm").as_int(1, 1 << 16);
    p.bit_serial.dk = s->get("dk").as_int(1, 1 << 16);
    p.bit_serial.dn = s->get("dn").as_int(1, 1 << 16);
    s->allow("stages");
    if (s->has("stages")) {
      // Every field required: a staged profile states (and cites) each of them.
      JsonObject st = s->get("stages").object();
      BitSerialStages& g = p.bit_serial.stages;
      p.bit_serial.staged = true;
      g.fetch_bits_per_cycle = st.get("fetch_bits_per_cycle").as_int(1, kMaxDramBitsPerCycle);
      g.result_bits_per_cycle = st.get("result_bits_per_cycle").as_int(1, kMaxDramBitsPerCycle);
      g.result_bits = st.get("result_bits").as_int(1, 64);
      g.exec_latency_cycles = st.get("exec_latency_cycles").as_int(0, 1 << 16);
      g.sync_cycles = st.get("sync_cycles").as_int(0, 1 << 16);
      g.fetch_latency_cycles = st.get("fetch_latency_cycles").as_int(0, 1 << 20);
      st.finish();
    }
    s->finish();
  }
  if (auto f = section("bit_fusion", p.architecture == Architecture::bit_fusion)) {
    p.bit_fusion.rows = f->get("rows").as_int(1, 1 << 16);
    p.bit_fusion.cols = f->get("cols").as_int(1, 1 << 16);
    f->finish();
  }
  if (auto t = section("table", p.architecture == Architecture::table)) {
    std::string csv = t->get("csv").as_string(true);
    std::filesystem::path path(csv);
    if (path.is_relative() && !dir.empty()) path = std::filesystem::path(dir) / path;
    p.table.csv = path.string();
    // Name the profile and its pointer, not only the CSV path it resolved to.
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      t->fail_at("csv", fmt::format("no such file '{}' (resolved to {})", csv, path.string()));
    t->finish();
    read_table_csv(p.table, p.w_bits, p.a_bits);
  }
  o.finish();
  return p;
}

HardwareProfile load_profile(const std::string& path) {
  JsonValue root = read_json_file(path, ErrorKind::profile);
  return profile_from_json(root, std::filesystem::path(path).parent_path().string());
}

nlohmann::json profile_to_json(const HardwareProfile& p) {
  nlohmann::json j;
  j["schema"] = kSchema;
  j["name"] = p.name;
  j["description"] = p.description;
  j["sources"] = p.sources;
  j["architecture"] = to_string(p.architecture);
  j["batch"] = p.batch;
  j["clock_mhz"] = p.clock_mhz;
  j["precision"] = {{"w_bits", {p.w_bits.min_bits, p.w_bits.max_bits}},
                    {"a_bits", {p.a_bits.min_bits, p.a_bits.max_bits}}};
  if (p.architecture != Architecture::table) {
    const auto& m = p.memory;
    j["memory"] = {{"dram_bits_per_cycle", m.dram_bits_per_cycle},
                   {"weight_buffer_bits", m.weight_buffer_bits},
                   {"input_buffer_bits", m.input_buffer_bits},
                   {"output_buffer_bits", m.output_buffer_bits},
                   {"accumulator_bits", m.accumulator_bits},
                   {"output_bits", m.output_bits}};
    const auto& e = p.energy;
    j["energy"] = {{"core_pj_per_cycle", e.core_pj_per_cycle},
                   {"sram_weight_pj_per_bit", e.sram_weight_pj_per_bit},
                   {"sram_input_pj_per_bit", e.sram_input_pj_per_bit},
                   {"sram_output_pj_per_bit", e.sram_output_pj_per_bit},
                   {"dram_pj_per_bit", e.dram_pj_per_bit}};
    // Written only when set, so profiles without overheads read back unchanged.
    if (p.overhead.cycles_per_layer != 0 || p.overhead.cycles_per_tile != 0)
      j["overhead"] = {{"cycles_per_layer", p.overhead.cycles_per_layer},
                       {"cycles_per_tile", p.overhead.cycles_per_tile}};
  }
  if (p.architecture == Architecture::bit_serial) {
    j["bit_serial"] = {{"dm", p.bit_serial.dm}, {"dk", p.bit_serial.dk}, {"dn", p.bit_serial.dn}};
    if (p.bit_serial.staged) {
      const BitSerialStages& g = p.bit_serial.stages;
      j["bit_serial"]["stages"] = {{"fetch_bits_per_cycle", g.fetch_bits_per_cycle},
                                   {"result_bits_per_cycle", g.result_bits_per_cycle},
                                   {"result_bits", g.result_bits},
                                   {"exec_latency_cycles", g.exec_latency_cycles},
                                   {"sync_cycles", g.sync_cycles},
                                   {"fetch_latency_cycles", g.fetch_latency_cycles}};
    }
  }
  if (p.architecture == Architecture::bit_fusion)
    j["bit_fusion"] = {{"rows", p.bit_fusion.rows}, {"cols", p.bit_fusion.cols}};
  if (p.architecture == Architecture::table) j["table"] = {{"csv", p.table.csv}};
  return j;
}

}  // namespace haq::hw
