// main() for the fuzz targets outside the clang fuzzing build: runs each file given (or each file
// in a folder given) once through LLVMFuzzerTestOneInput, so the seed corpora and the regression
// cases run under CTest in every build, the sanitizer builds included. Flags (-runs=0, which
// libFuzzer needs for the same replay) are ignored.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

void replay(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("-")) continue;
    if (fs::is_directory(arg)) {
      for (const auto& entry : fs::directory_iterator(arg))
        if (entry.is_regular_file()) replay(entry.path()), ++files;
    } else if (fs::is_regular_file(arg)) {
      replay(arg), ++files;
    } else {
      std::fprintf(stderr, "%s: no such file or folder: %s\n", argv[0], arg.c_str());
      return 2;
    }
  }
  // A replay that ran nothing would pass without testing anything.
  if (files == 0) {
    std::fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
    return 2;
  }
  std::printf("%s: %d inputs replayed\n", argv[0], files);
  return 0;
}
