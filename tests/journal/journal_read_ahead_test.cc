// JournalReadAhead hands replay exactly what the reader would: every record
// (type, sequence number, where it starts and ends, payload) in order, across
// batch boundaries, and the reader's outcome and position at the end; and it
// can be dropped part way without hanging.

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "src/journal/journal_read_ahead.h"
#include "store/journal_reader.h"
#include "store/journal_writer.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

using Outcome = JournalReader::Outcome;

struct Seen {
  uint8_t type;
  uint64_t seq, offset, end;
  std::string payload;
  bool operator==(const Seen&) const = default;
};

struct Read {
  std::vector<Seen> records;
  Outcome outcome;
  uint64_t good_offset, last_seq;
  std::string problem;
};

class JournalReadAheadTest : public ::testing::Test {
 protected:
  // `count` records of random sizes, up to `max_size` bytes each.
  void Write(size_t count, size_t max_size) {
    auto writer = JournalWriter::Create(Env::Default(), path_, 0);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    std::mt19937 random(7);
    for (size_t i = 0; i < count; ++i) {
      std::string payload(random() % (max_size + 1), static_cast<char>('a' + i % 26));
      (*writer)->Add(static_cast<uint8_t>(1 + i % 5), payload);
      if ((*writer)->pending_bytes() > (1 << 20)) {
        ASSERT_TRUE((*writer)->Flush().ok());
      }
    }
    ASSERT_TRUE((*writer)->Flush().ok());
  }

  std::unique_ptr<JournalReader> Open() {
    auto reader = JournalReader::Open(Env::Default(), path_);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return reader.ok() ? std::move(*reader) : nullptr;
  }

  Read Direct() {
    Read read;
    auto reader = Open();
    JournalReader::Record record;
    while ((read.outcome = reader->Next(&record)) == Outcome::kRecord) {
      read.records.push_back({record.type, record.seq, record.offset, reader->good_offset(),
                              std::string(record.payload)});
    }
    read.good_offset = reader->good_offset();
    read.last_seq = reader->last_seq();
    read.problem = reader->problem();
    return read;
  }

  Read Ahead() {
    Read read;
    JournalReadAhead ahead(Open());
    JournalReadAhead::Record record;
    while ((read.outcome = ahead.Next(&record)) == Outcome::kRecord) {
      read.records.push_back(
          {record.type, record.seq, record.offset, record.end, std::string(record.payload)});
    }
    read.good_offset = ahead.reader().good_offset();
    read.last_seq = ahead.reader().last_seq();
    read.problem = ahead.reader().problem();
    return read;
  }

  void ExpectSame(const Read& direct, const Read& ahead) {
    EXPECT_EQ(ahead.outcome, direct.outcome);
    EXPECT_EQ(ahead.good_offset, direct.good_offset);
    EXPECT_EQ(ahead.last_seq, direct.last_seq);
    EXPECT_EQ(ahead.problem, direct.problem);
    ASSERT_EQ(ahead.records.size(), direct.records.size());
    for (size_t i = 0; i < direct.records.size(); ++i) {
      ASSERT_EQ(ahead.records[i], direct.records[i]) << "record " << i;
    }
  }

  uint64_t FileSize() {
    std::ifstream in(path_, std::ios::binary | std::ios::ate);
    return static_cast<uint64_t>(in.tellg());
  }

  ScopedTempDir temp_;
  const std::string path_ = temp_.File("journal");
};

TEST_F(JournalReadAheadTest, EmptyJournalEndsAtOnce) {
  Write(0, 0);
  ExpectSame(Direct(), Ahead());
  EXPECT_EQ(Ahead().outcome, Outcome::kEnd);
}

TEST_F(JournalReadAheadTest, ManySmallRecordsAcrossBatchesArriveInOrder) {
  Write(50'000, 100);  // several batches by record count
  Read ahead = Ahead();
  EXPECT_EQ(ahead.records.size(), 50'000u);
  EXPECT_EQ(ahead.outcome, Outcome::kEnd);
  ExpectSame(Direct(), ahead);
}

TEST_F(JournalReadAheadTest, LargeRecordsAcrossBatchesArriveWhole) {
  Write(60, 256 << 10);  // several batches by bytes
  ExpectSame(Direct(), Ahead());
}

TEST_F(JournalReadAheadTest, TornTailIsReportedAfterEveryGoodRecord) {
  Write(20'000, 100);
  std::filesystem::resize_file(path_, FileSize() - 3);  // a record cut short
  Read ahead = Ahead();
  EXPECT_EQ(ahead.outcome, Outcome::kTornTail);
  EXPECT_EQ(ahead.records.size(), 19'999u);
  ExpectSame(Direct(), ahead);
}

TEST_F(JournalReadAheadTest, DroppedPartWayStopsItsThread) {
  Write(50'000, 100);
  for (int taken : {0, 1, 10'000}) {
    JournalReadAhead ahead(Open());
    JournalReadAhead::Record record;
    for (int i = 0; i < taken; ++i) ASSERT_EQ(ahead.Next(&record), Outcome::kRecord);
    // The destructor stops and joins the thread, wherever it is.
  }
}

}  // namespace
}  // namespace keyfs
