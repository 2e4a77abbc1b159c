#include "engine/messaging/topic.h"

#include <gtest/gtest.h>

namespace ringmesh::messaging {
namespace {

TEST(TopicTest, ValidatesTopicsAndPatterns) {
    EXPECT_TRUE(valid_topic("md/eq/AAPL"));
    EXPECT_TRUE(valid_topic("single"));
    EXPECT_FALSE(valid_topic(""));
    EXPECT_FALSE(valid_topic("md//AAPL"));
    EXPECT_FALSE(valid_topic("md/eq/"));
    EXPECT_FALSE(valid_topic("md/*/AAPL"));
    EXPECT_FALSE(valid_topic("md/e q"));
    EXPECT_TRUE(valid_pattern("md/*/AAPL"));
    EXPECT_TRUE(valid_pattern("md/**"));
    EXPECT_TRUE(valid_pattern("**"));
    EXPECT_FALSE(valid_pattern("md/**/AAPL"));
    EXPECT_FALSE(valid_pattern("md/a*"));
    EXPECT_FALSE(valid_pattern("/md"));
}

TEST(TopicTest, MatchesLevelsAndWildcards) {
    EXPECT_TRUE(topic_matches("md/eq/AAPL", "md/eq/AAPL"));
    EXPECT_FALSE(topic_matches("md/eq/AAPL", "md/eq/MSFT"));
    EXPECT_TRUE(topic_matches("md/*/AAPL", "md/eq/AAPL"));
    EXPECT_FALSE(topic_matches("md/*/AAPL", "md/eq/x/AAPL"));
    EXPECT_FALSE(topic_matches("md/*", "md"));
    EXPECT_TRUE(topic_matches("md/**", "md/eq/AAPL"));
    EXPECT_TRUE(topic_matches("md/**", "md/eq"));
    EXPECT_FALSE(topic_matches("md/**", "md"));
    EXPECT_TRUE(topic_matches("**", "anything/at/all"));
    EXPECT_FALSE(topic_matches("md/eq", "md/eq/AAPL"));
    EXPECT_FALSE(topic_matches("md/eq/AAPL", "md/eq"));
    EXPECT_TRUE(topic_matches("*", "md"));
    EXPECT_FALSE(topic_matches("*", "md/eq"));
}

}  // namespace
}  // namespace ringmesh::messaging
