#include "src/base/size.h"

#include <gtest/gtest.h>

#include "src/base/status.h"

namespace keyfs {
namespace {

TEST(SizeTest, ParsesNumbersAndBinarySuffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseSize("512m"), 512u << 20);
  EXPECT_EQ(*ParseSize("2G"), uint64_t{2} << 30);
  EXPECT_EQ(*ParseSize("1TiB"), uint64_t{1} << 40);
  EXPECT_EQ(*ParseSize("3MB"), 3u << 20);
}

TEST(SizeTest, ParsesDecimalFractionsOfAUnit) {
  EXPECT_EQ(*ParseSize("1.5G"), uint64_t{3} << 29);
  EXPECT_EQ(*ParseSize("0.5M"), 512u << 10);
  EXPECT_EQ(*ParseSize("2.25k"), 2304u);
  EXPECT_EQ(*ParseSize("1.000000001G"), (uint64_t{1} << 30) + 1);  // rounded down
  EXPECT_EQ(*ParseSize("0.1K"), 102u);
  EXPECT_EQ(*ParseSize("15.999999999T"), (uint64_t{16} << 40) - 1100);
}

TEST(SizeTest, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "M", "-1", "1.5", "1.", "1.G", ".5G", "1.2.3G", "1,5G",
                          "1.0000000001G", "12Q", "1GG", "0x10", " 1", "1 G"}) {
    auto parsed = ParseSize(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), EINVAL) << bad;
  }
  EXPECT_EQ(ParseSize("99999999999999999999").status().code(), ERANGE);
  EXPECT_EQ(ParseSize("17179869184G").status().code(), ERANGE);
  EXPECT_EQ(ParseSize("16777216.5T").status().code(), ERANGE);
}

TEST(SizeTest, FormatsForPeople) {
  EXPECT_EQ(FormatSize(100), "100 B");
  EXPECT_EQ(FormatSize(512u << 20), "512.0 MiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
}

TEST(StatusTest, KeepsTheErrnoAndAddsContext) {
  Status status = Status::Errno(ENOSPC, "journal");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ENOSPC);
  EXPECT_EQ(status.ToString(), "journal: No space left on device");
  EXPECT_EQ(status.WithContext("/var/lib/keyfs").ToString(),
            "/var/lib/keyfs: journal: No space left on device");
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

}  // namespace
}  // namespace keyfs
