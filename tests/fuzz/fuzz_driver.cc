// A bounded, seeded mutation driver for libFuzzer-style targets, so that every decoder's fuzz
// target runs in CI with the toolchain the build already has (the fuzz-smoke suite). With
// clang, the same targets link against libFuzzer (-fsanitize=fuzzer) for open-ended runs.
//
// usage: TARGET [iterations] [seed]   — mutates the target's seed inputs (byte flips, inserts,
// erases, splices, interesting integers) and calls LLVMFuzzerTestOneInput on each.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
/// Each target provides valid inputs to start from.
std::vector<std::vector<std::uint8_t>> fuzz_seeds();

namespace {

void mutate(std::vector<std::uint8_t>& input, const std::vector<std::vector<std::uint8_t>>& seeds,
            std::mt19937_64& rng) {
    const int rounds = 1 + static_cast<int>(rng() % 4);
    for (int r = 0; r < rounds; ++r) {
        switch (rng() % 6) {
            case 0:  // flip bits
                if (!input.empty())
                    input[rng() % input.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                break;
            case 1:  // random byte
                if (!input.empty()) input[rng() % input.size()] = static_cast<std::uint8_t>(rng());
                break;
            case 2:  // insert bytes
                input.insert(input.begin() + static_cast<long>(rng() % (input.size() + 1)),
                             1 + rng() % 8, static_cast<std::uint8_t>(rng()));
                break;
            case 3:  // erase a range
                if (!input.empty()) {
                    const std::size_t at = rng() % input.size();
                    input.erase(input.begin() + static_cast<long>(at),
                                input.begin() +
                                    static_cast<long>(std::min(input.size(), at + 1 + rng() % 16)));
                }
                break;
            case 4: {  // splice another seed in
                const auto& other = seeds[rng() % seeds.size()];
                if (!other.empty()) {
                    const std::size_t from = rng() % other.size();
                    input.insert(input.begin() + static_cast<long>(rng() % (input.size() + 1)),
                                 other.begin() + static_cast<long>(from), other.end());
                }
                break;
            }
            case 5: {  // an interesting 32-bit value at a random aligned offset
                static const std::uint32_t interesting[] = {
                    0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u, 0xffffffffu, 32, 64};
                if (input.size() >= 4) {
                    const std::size_t at = (rng() % (input.size() / 4)) * 4;
                    const std::uint32_t v = interesting[rng() % std::size(interesting)];
                    std::memcpy(input.data() + at, &v, 4);
                }
                break;
            }
        }
    }
    if (input.size() > 1 << 16) input.resize(1 << 16);
}

}  // namespace

int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 200000;
    const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
    const auto seeds = fuzz_seeds();
    std::mt19937_64 rng(seed);
    for (const auto& s : seeds)
        LLVMFuzzerTestOneInput(s.data(), s.size());
    std::vector<std::uint8_t> input;
    for (long i = 0; i < iterations; ++i) {
        input = seeds[rng() % seeds.size()];
        mutate(input, seeds, rng);
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("fuzz-smoke: %ld inputs from %zu seeds (seed %llu), no crash\n", iterations,
                seeds.size(), static_cast<unsigned long long>(seed));
    return 0;
}
