#include "src/base/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace keyfs {
namespace {

TEST(Crc32cTest, StandardCheckValues) {
  // RFC 3720 (iSCSI) B.4 test vectors and the usual "123456789" check value.
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c::Value(ascending), 0x46dd794eu);
  EXPECT_EQ(crc32c::Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsOneShot) {
  std::string data = "hello keyfs journal";
  uint32_t one_shot = crc32c::Value(data);
  uint32_t extended = crc32c::Extend(crc32c::Value(data.substr(0, 7)), data.data() + 7,
                                     data.size() - 7);
  EXPECT_EQ(one_shot, extended);
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  uint32_t crc = crc32c::Value("foo");
  EXPECT_NE(crc32c::Mask(crc), crc);
  EXPECT_NE(crc32c::Mask(crc32c::Mask(crc)), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Mask(crc)), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Unmask(crc32c::Mask(crc32c::Mask(crc)))), crc);
}

}  // namespace
}  // namespace keyfs
