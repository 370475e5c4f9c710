#include "src/base/clock.h"

namespace keyfs {

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

}  // namespace keyfs
