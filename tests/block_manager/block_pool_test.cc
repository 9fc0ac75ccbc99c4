#include "block_manager/block_pool.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::block_manager {
namespace {

using ::testing::ElementsAre;

TEST(BlockPoolTest, AllocatesInIdOrderAndFreedBlocksReturnAtTheTail) {
  BlockPool pool(4);
  EXPECT_THAT(pool.FreeQueue(), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(pool.PopFree(), 0);
  EXPECT_EQ(pool.PopFree(), 1);
  EXPECT_EQ(pool.num_used_blocks(), 2);
  pool.DecRef(0);
  EXPECT_THAT(pool.FreeQueue(), ElementsAre(2, 3, 0));
  EXPECT_EQ(pool.PopFree(), 2);
  EXPECT_EQ(pool.PopFree(), 3);
  EXPECT_EQ(pool.PopFree(), 0);
  EXPECT_EQ(pool.num_free_queue_blocks(), 0);
  pool.CheckInvariants();
}

TEST(BlockPoolTest, IncRefOnFreeBlockUnlinksItFromTheMiddle) {
  BlockPool pool(3);
  pool.IncRef(1);
  EXPECT_THAT(pool.FreeQueue(), ElementsAre(0, 2));
  pool.IncRef(1);
  EXPECT_EQ(pool.ref_count(1), 2);
  pool.DecRef(1);
  EXPECT_THAT(pool.FreeQueue(), ElementsAre(0, 2));
  pool.DecRef(1);
  EXPECT_THAT(pool.FreeQueue(), ElementsAre(0, 2, 1));
  pool.CheckInvariants();
}

TEST(BlockPoolTest, CachedCountFollowsHashAndRefCount) {
  BlockPool pool(2);
  const int32_t id = pool.PopFree();
  pool.SetHash(id, BlockHash{1, 2});
  EXPECT_EQ(pool.num_cached_blocks(), 0);  // in use
  pool.DecRef(id);
  EXPECT_EQ(pool.num_cached_blocks(), 1);
  EXPECT_TRUE(pool.has_hash(id));
  pool.IncRef(id);  // cache hit
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  pool.DecRef(id);
  pool.ClearHash(id);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  EXPECT_EQ(pool.num_free_queue_blocks(), 2);
  pool.CheckInvariants();
}

TEST(BlockPoolDeathTest, DoubleFreeCrashesNamingTheBug) {
  BlockPool pool(1);
  EXPECT_DEATH(pool.DecRef(0), "double free");
}

}  // namespace
}  // namespace kitty::block_manager
