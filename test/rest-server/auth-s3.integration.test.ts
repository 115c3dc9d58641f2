import { describeAuth } from "./auth-suite.js";
import { s3Backend } from "./backends.js";

// The authentication suite on a bucket of the test host's Ceph RGW (scripts/setup-ceph.sh).
describeAuth(s3Backend);
