// Package properties reads the Java .properties file that Amazon's
// MultiLangDaemon reads and turns it into a validated [Config] for the
// kcl multilang host.
//
// [Load] accepts every key the MultiLangDaemon documents (see Config), with
// KCL's defaults and KCL's quirks: a numeric key set to 0 or a boolean key set
// to false means "unset" and the default applies; streamArn wins over
// streamName; retrievalMode DEFAULT means polling when any polling key is set
// and enhanced fan-out otherwise. It differs from the Java host where the Java
// host is unhelpful:
//
//   - a malformed value is a [*ValueError] naming the key, its line and the
//     value, and every such error in the file is reported at once
//     (errors.Join), so a file can be fixed in one pass;
//   - a key kcl does not know is not silently ignored but returned as a
//     [Warning] (key and line) for the host to log;
//   - an unknown credentials provider is an error listing the known ones,
//     where the Java host builds an empty provider chain and fails later.
//
// The file syntax is parsed by [Parse], a small parser of our own rather than
// github.com/magiconair/properties: that library (v1.8.x) keeps values,
// comments and key order but not the line a key came from, which every error
// message here must name, and by default it expands ${key} references, which
// Java's Properties.load does not do. The Java format is small enough to
// implement exactly and test completely.
//
// Nothing here builds AWS clients: credentials providers are returned as
// [CredentialsProvider] values (a kind and its arguments) for the host to map
// onto the Go SDK.
package properties
