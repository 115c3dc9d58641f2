import { s3Backend } from "./backends.js";
import { describeProtocol } from "./protocol-suite.js";

// The protocol suite on a bucket of the test host's Ceph RGW (scripts/setup-ceph.sh).
describeProtocol(s3Backend);
