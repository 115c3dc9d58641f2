import { describeAuth } from "./auth-suite.js";
import { fsBackend } from "./backends.js";

describeAuth(fsBackend);
