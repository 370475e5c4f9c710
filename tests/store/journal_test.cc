// The journal format by byte surgery: write records, damage the file the ways
// disks and crashes do, and check what the reader makes of it.

#include <fstream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "src/base/coding.h"
#include "store/journal_reader.h"
#include "store/journal_writer.h"
#include "tests/store/fault_injection_env.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

using Outcome = JournalReader::Outcome;

struct Written {
  uint8_t type;
  std::string payload;
};

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(temp_.path().empty()); }

  void WriteRecords(const std::vector<Written>& records, Env* env = Env::Default()) {
    auto writer = JournalWriter::Create(env, path_, 0);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    for (const auto& r : records) (*writer)->Add(r.type, r.payload);
    ASSERT_TRUE((*writer)->Flush().ok());
    ASSERT_TRUE((*writer)->Sync().ok());
  }

  struct ReadResult {
    std::vector<Written> records;
    Outcome end = Outcome::kEnd;
    uint64_t good_offset = 0;
    std::string problem;
  };
  ReadResult ReadAll() {
    ReadResult result;
    auto reader = JournalReader::Open(Env::Default(), path_);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return result;
    JournalReader::Record record;
    Outcome outcome;
    while ((outcome = (*reader)->Next(&record)) == Outcome::kRecord) {
      result.records.push_back({record.type, std::string(record.payload)});
    }
    result.end = outcome;
    result.good_offset = (*reader)->good_offset();
    result.problem = (*reader)->problem();
    return result;
  }

  std::string Contents() {
    std::ifstream in(path_, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  void SetContents(const std::string& bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }
  void IncrementByte(size_t offset) {
    std::string bytes = Contents();
    bytes[offset]++;
    SetContents(bytes);
  }
  void ShrinkSize(size_t bytes) {
    std::string contents = Contents();
    SetContents(contents.substr(0, contents.size() - bytes));
  }
  size_t RecordOffset(size_t index, const std::vector<Written>& records) {
    size_t offset = journal::kFileHeaderSize;
    for (size_t i = 0; i < index; ++i) {
      offset += journal::kRecordHeaderSize + records[i].payload.size();
    }
    return offset;
  }

  ScopedTempDir temp_;
  const std::string path_ = temp_.File("journal");
};

const std::vector<Written> kThree = {{1, "create a"}, {2, "write 5 bytes"}, {3, "unlink b"}};

TEST_F(JournalTest, EmptyJournalIsJustAHeader) {
  WriteRecords({});
  EXPECT_EQ(Contents().size(), journal::kFileHeaderSize);
  ReadResult read = ReadAll();
  EXPECT_TRUE(read.records.empty());
  EXPECT_EQ(read.end, Outcome::kEnd);
  EXPECT_EQ(read.good_offset, journal::kFileHeaderSize);
}

TEST_F(JournalTest, EveryRecordTypeRoundTrips) {
  std::vector<Written> records;
  for (int type = 1; type <= 255; ++type) {
    records.push_back({static_cast<uint8_t>(type), std::string(type % 7, static_cast<char>(type))});
  }
  WriteRecords(records);
  ReadResult read = ReadAll();
  ASSERT_EQ(read.records.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(read.records[i].type, records[i].type);
    EXPECT_EQ(read.records[i].payload, records[i].payload);
  }
  EXPECT_EQ(read.end, Outcome::kEnd);
}

TEST_F(JournalTest, PayloadEncodedInPlaceIsTheSameRecord) {
  // AddEncoded builds the payload inside the writer's buffer, after records
  // already there; the file must be byte for byte what Add writes.
  auto write = [&](bool in_place) {
    auto writer = JournalWriter::Create(Env::Default(), path_, 0);
    EXPECT_TRUE(writer.ok());
    for (int i = 0; i < 100; ++i) {
      std::string payload(i * 37 % 300, static_cast<char>('a' + i % 26));
      if (in_place) {
        (*writer)->AddEncoded(static_cast<uint8_t>(1 + i % 9), [&](std::string* out) {
          out->append(payload.substr(0, payload.size() / 2));
          out->append(payload.substr(payload.size() / 2));
        });
      } else {
        (*writer)->Add(static_cast<uint8_t>(1 + i % 9), payload);
      }
    }
    EXPECT_TRUE((*writer)->Flush().ok());
    return Contents();
  };
  std::string copied = write(false);
  std::string in_place = write(true);
  EXPECT_EQ(in_place, copied);
  EXPECT_EQ(ReadAll().records.size(), 100u);
}

TEST_F(JournalTest, ZeroLengthAndMaximumSizeRecords) {
  std::string biggest(journal::kMaxPayload, 'm');
  biggest[12345] = 'x';
  WriteRecords({{9, ""}, {9, biggest}, {9, ""}});
  ReadResult read = ReadAll();
  ASSERT_EQ(read.records.size(), 3u);
  EXPECT_EQ(read.records[0].payload, "");
  EXPECT_EQ(read.records[1].payload, biggest);
  EXPECT_EQ(read.end, Outcome::kEnd);
}

TEST_F(JournalTest, SequenceNumbersContinueFromTheBase) {
  auto writer = JournalWriter::Create(Env::Default(), path_, 41);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->Add(1, "x"), 42u);
  EXPECT_EQ((*writer)->Add(1, "y"), 43u);
  ASSERT_TRUE((*writer)->Flush().ok());
  auto reader = JournalReader::Open(Env::Default(), path_);
  JournalReader::Record record;
  ASSERT_EQ((*reader)->Next(&record), Outcome::kRecord);
  EXPECT_EQ(record.seq, 42u);
  EXPECT_EQ((*reader)->header().base_seq, 41u);
}

TEST_F(JournalTest, TruncatedTrailingRecordIsIgnoredAtEveryOffset) {
  WriteRecords(kThree);
  std::string full = Contents();
  size_t last = RecordOffset(2, kThree);
  for (size_t cut = 1; cut < full.size() - last; ++cut) {
    SetContents(full.substr(0, full.size() - cut));
    ReadResult read = ReadAll();
    ASSERT_EQ(read.records.size(), 2u) << "cut " << cut;
    EXPECT_EQ(read.end, Outcome::kTornTail) << "cut " << cut;
    EXPECT_EQ(read.good_offset, last);
  }
}

TEST_F(JournalTest, BadLengthAtTheEndIsIgnored) {
  WriteRecords(kThree);
  std::string bytes = Contents();
  size_t last = RecordOffset(2, kThree);
  EncodeFixed32(bytes.data() + last + 4, 1000000);  // claims more than the file has
  SetContents(bytes);
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.end, Outcome::kTornTail);
  EXPECT_NE(read.problem.find("extending past the end of the file"), std::string::npos);
}

TEST_F(JournalTest, ChecksumMismatchOfTheLastRecordIsATornTail) {
  WriteRecords(kThree);
  IncrementByte(RecordOffset(2, kThree) + journal::kRecordHeaderSize);  // its payload
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.end, Outcome::kTornTail);
}

TEST_F(JournalTest, ChecksumMismatchInTheMiddleIsReportedWithItsOffset) {
  WriteRecords(kThree);
  size_t middle = RecordOffset(1, kThree);
  IncrementByte(middle + journal::kRecordHeaderSize + 2);
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 1u);
  EXPECT_EQ(read.end, Outcome::kCorrupt);
  EXPECT_EQ(read.good_offset, middle);
  EXPECT_NE(read.problem.find("checksum mismatch in the record at offset " +
                              std::to_string(middle)),
            std::string::npos)
      << read.problem;
  EXPECT_NE(read.problem.find(path_), std::string::npos);
}

TEST_F(JournalTest, DamagedHeaderFieldsAreCaughtByTheChecksum) {
  WriteRecords(kThree);
  IncrementByte(RecordOffset(1, kThree) + 8);  // the type byte of the middle record
  EXPECT_EQ(ReadAll().end, Outcome::kCorrupt);
  WriteRecords(kThree);
  IncrementByte(RecordOffset(1, kThree) + 9);  // its sequence number
  EXPECT_EQ(ReadAll().end, Outcome::kCorrupt);
}

TEST_F(JournalTest, GarbageInTheMiddleIsCorruption) {
  WriteRecords(kThree);
  std::string bytes = Contents();
  size_t middle = RecordOffset(1, kThree);
  bytes.insert(middle, "garbage that is no record at all");
  SetContents(bytes);
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 1u);
  EXPECT_EQ(read.end, Outcome::kCorrupt);
}

TEST_F(JournalTest, ZeroFilledTailIsTorn) {
  WriteRecords(kThree);
  SetContents(Contents() + std::string(4096, '\0'));
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 3u);
  EXPECT_EQ(read.end, Outcome::kTornTail);
  EXPECT_NE(read.problem.find("zero-filled tail"), std::string::npos);
}

TEST_F(JournalTest, SequenceGapIsCorruption) {
  // Two journals spliced together: the second's numbers do not follow on.
  WriteRecords(kThree);
  std::string first = Contents();
  WriteRecords({{1, "other"}, {1, "journal"}});
  std::string second = Contents();
  SetContents(first + second.substr(journal::kFileHeaderSize + journal::kRecordHeaderSize + 5));
  ReadResult read = ReadAll();
  EXPECT_EQ(read.records.size(), 3u);
  EXPECT_EQ(read.end, Outcome::kCorrupt);
  EXPECT_NE(read.problem.find("sequence number 2"), std::string::npos) << read.problem;
}

TEST_F(JournalTest, NotAJournalIsRefusedWithTheReason) {
  SetContents("hello, this is a text file and not a journal");
  auto reader = JournalReader::Open(Env::Default(), path_);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("is not a keyfs journal: bad magic"),
            std::string::npos);
  WriteRecords(kThree);
  IncrementByte(17);  // base_seq, covered by the header checksum
  EXPECT_NE(JournalReader::Open(Env::Default(), path_).status().message().find(
                "header checksum mismatch"),
            std::string::npos);
}

TEST_F(JournalTest, ContinueCutsATornTailAndNumbersOn) {
  WriteRecords(kThree);
  ShrinkSize(3);
  ReadResult read = ReadAll();
  ASSERT_EQ(read.end, Outcome::kTornTail);
  auto writer = JournalWriter::Continue(Env::Default(), path_, read.good_offset, 2);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->Add(4, "after repair"), 3u);
  ASSERT_TRUE((*writer)->Flush().ok());
  ReadResult again = ReadAll();
  ASSERT_EQ(again.records.size(), 3u);
  EXPECT_EQ(again.records[2].payload, "after repair");
  EXPECT_EQ(again.end, Outcome::kEnd);
}

TEST_F(JournalTest, FailedFlushHealsOnceWritesSucceed) {
  FaultInjectionEnv env(Env::Default());
  auto writer = JournalWriter::Create(&env, path_, 0);
  ASSERT_TRUE(writer.ok());
  (*writer)->Add(1, "first");
  ASSERT_TRUE((*writer)->Flush().ok());
  (*writer)->Add(1, "second");
  env.FailFrom(FaultInjectionEnv::kAppend, ENOSPC);
  Status failed = (*writer)->Flush();
  EXPECT_EQ(failed.code(), ENOSPC);
  EXPECT_EQ((*writer)->Flush().code(), ENOSPC);  // still full
  // Simulate what a partial write leaves: bytes of the record at the end.
  SetContents(Contents() + "seco");
  env.ClearFailures();
  (*writer)->Add(1, "third");
  ASSERT_TRUE((*writer)->Flush().ok());
  ReadResult read = ReadAll();
  ASSERT_EQ(read.records.size(), 3u);
  EXPECT_EQ(read.records[1].payload, "second");
  EXPECT_EQ(read.records[2].payload, "third");
  EXPECT_EQ(read.end, Outcome::kEnd);
}

TEST_F(JournalTest, CrashKeepsSyncedRecordsAndDropsTheRest) {
  FaultInjectionEnv env(Env::Default());
  {
    auto writer = JournalWriter::Create(&env, path_, 0);
    ASSERT_TRUE(writer.ok());
    (*writer)->Add(1, "synced");
    ASSERT_TRUE((*writer)->Flush().ok());
    ASSERT_TRUE((*writer)->Sync().ok());
    (*writer)->Add(1, "written, not synced");
    ASSERT_TRUE((*writer)->Flush().ok());
  }
  ASSERT_TRUE(env.SimulateCrash().ok());
  ReadResult read = ReadAll();
  ASSERT_EQ(read.records.size(), 1u);
  EXPECT_EQ(read.records[0].payload, "synced");
  EXPECT_EQ(read.end, Outcome::kEnd);
}

TEST_F(JournalTest, RandomDamageNeverYieldsAWrongRecord) {
  // Whatever single byte is damaged, the reader returns a prefix of what was
  // written, never a record with other contents.
  std::vector<Written> records;
  for (int i = 0; i < 20; ++i) records.push_back({1, "record number " + std::to_string(i)});
  WriteRecords(records);
  std::string clean = Contents();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = clean;
    size_t at = journal::kFileHeaderSize + rng() % (bytes.size() - journal::kFileHeaderSize);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
    SetContents(bytes);
    ReadResult read = ReadAll();
    ASSERT_LT(read.records.size(), records.size()) << "damage at " << at << " went unnoticed";
    for (size_t i = 0; i < read.records.size(); ++i) {
      ASSERT_EQ(read.records[i].payload, records[i].payload);
    }
    ASSERT_NE(read.end, Outcome::kEnd);
  }
}

}  // namespace
}  // namespace keyfs
