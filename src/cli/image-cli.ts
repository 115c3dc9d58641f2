// The container images' helpers, as restic/rest-server's image has them: rest-server's entrypoint
// and `create_user` / `delete_user`. Done by the executable itself, so the rest-server image needs
// no shell, no htpasswd and no setpriv.

import { deleteUser, setUser } from "../rest-server/htpasswd-users.js";
import { dropPrivileges, imageSettings, prepareImage } from "../rest-server/image-entrypoint.js";
import { ConfigError } from "../system/errors.js";
import { output } from "./output.js";
import { main as restServer } from "./rest-server-cli.js";

/** rest-server with upstream's image conventions (the entrypoint of the rest-server image). */
export async function restServerImage(argv: string[]): Promise<number> {
  const prepared = await prepareImage(imageSettings(process.env), argv);
  if (prepared.noUsers) {
    output("rest-server").print(
      "\n**WARNING** No user exists, please 'docker exec -it $CONTAINER_ID create_user'\n",
    );
  }
  if (prepared.runAs) dropPrivileges(prepared.runAs);
  return restServer(prepared.args);
}

/** create_user NAME [PASSWORD]: without PASSWORD it is asked for twice on a terminal, else one line of stdin. */
export async function createUser(argv: string[]): Promise<number> {
  const { print, error } = output("create_user");
  const [name, given] = argv;
  if (!name || argv.length > 2) {
    print("create_user [username]\nor\ncreate_user [username] [password]");
    return 1;
  }
  let password = given;
  if (password === undefined) {
    if (process.stdin.isTTY) {
      password = await askHidden("New password: ");
      if ((await askHidden("Re-type new password: ")) !== password) {
        error("password verification error");
        return 3;
      }
    } else {
      password = await firstLine();
    }
  }
  const { passwordFile } = imageSettings(process.env);
  const added = await setUser(passwordFile, name, password);
  print(`${added ? "Adding" : "Updating"} password for user ${name}`);
  return 0;
}

/** delete_user NAME */
export async function deleteUserMain(argv: string[]): Promise<number> {
  const { print, error } = output("delete_user");
  const [name] = argv;
  if (!name || argv.length > 1) {
    print("delete_user [username]");
    return 1;
  }
  const { passwordFile } = imageSettings(process.env);
  if (!(await deleteUser(passwordFile, name))) {
    error(`User ${name} not found`);
    return 1;
  }
  print(`Deleting password for user ${name}`);
  return 0;
}

async function firstLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return (Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "").trimEnd();
}

/** Read one line from the terminal without echoing it. */
function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stdout.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let typed = "";
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n") {
          finish();
          resolve(typed);
          return;
        }
        if (char === "\u0003") {
          finish();
          reject(new ConfigError("interrupted"));
          return;
        }
        if (char === "\u007f" || char === "\b") typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    const finish = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stdout.write("\n");
    };
    stdin.on("data", onData);
  });
}
