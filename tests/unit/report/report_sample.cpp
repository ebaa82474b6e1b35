// Writes a report from a synthetic ReportInput: report_sample OUT_DIR [N_POINTS].
// Used to look at report.html (scripts/render_report.sh) without a real search.
#include <cstdio>
#include <string>

#include "haq/core/error.h"
#include "haq/report/report.h"
#include "synthetic.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: report_sample OUT_DIR [N_POINTS]\n");
    return 2;
  }
  try {
    int n = argc > 2 ? std::stoi(argv[2]) : 300;
    haq::report::write_report(haq::test::synthetic_input(n), argv[1]);
    std::printf("%s/report.html\n", argv[1]);
  } catch (const haq::Error& e) {
    std::fprintf(stderr, "report_sample: error: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
