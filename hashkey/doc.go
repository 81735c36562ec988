// Package hashkey handles Kinesis hash keys: unsigned 128-bit integers that
// Kinesis uses to route a record to the shard whose hash key range contains
// it.
//
// Kinesis derives a record's hash key from its explicit hash key when the
// producer set one, and otherwise from the MD5 digest of the UTF-8 bytes of its
// partition key, read as a big-endian unsigned integer. [Effective] applies
// that rule; [Range] answers whether a key belongs to a shard, given the
// decimal StartingHashKey and EndingHashKey that ListShards returns.
//
// Everything here works on a fixed-size [Key] value instead of math/big, so
// parsing, hashing and comparing do not allocate. Only [Key.String],
// [Key.MarshalText] and error paths allocate.
package hashkey
