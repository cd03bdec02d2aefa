// Dev-only: mints a LAYRA token for a username and registers it in Redis DB 0.
// Usage: npm run dev:token -- <username> [ttl-seconds]. Refuses to run in production mode.
import "./load-env.js";
import { loadConfig } from "../src/config.js";
import { mintToken } from "../src/resolvers/auth.js";
import { closeStores, createStores } from "../src/stores/index.js";

const [username, ttl = "86400"] = process.argv.slice(2);
const config = loadConfig();
if (config.env === "production") {
  console.error("dev:token refuses to run with NODE_ENV=production");
  process.exit(1);
}
if (!username || !/^[^\s_-]+$/.test(username)) {
  console.error("usage: npm run dev:token -- <username without '_', '-' or spaces> [ttl-seconds]");
  process.exit(1);
}
const stores = createStores(config);
console.log(await mintToken(config, stores, username, Number(ttl)));
await closeStores(stores);
