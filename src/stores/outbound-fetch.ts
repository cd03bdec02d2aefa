// The fetch the chat model is called with (docs/ask.md, "Outbound requests"). A model URL comes from users, so
// every connection is checked after DNS resolution, on the address actually connected to (no second lookup an
// attacker's DNS could answer differently), and every redirect is followed here, bounded, and checked again.
// Loopback, private, link-local (cloud metadata included), CGNAT, unspecified and every other special range
// are refused unless CHAT_MODEL_ALLOWED_HOSTS names the host or a network holding the address.
import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from "undici";
import { ChatModelFailed } from "../errors.js";

export interface OutboundPolicy {
  /** CIDRs, IP addresses or host names reachable although internal. */
  allowedHosts: readonly string[];
  maxRedirects: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const refused = (why: string) =>
  new ChatModelFailed(
    "MODEL_URL_REFUSED",
    `the model URL is refused: ${why} (an operator can allow it with CHAT_MODEL_ALLOWED_HOSTS)`,
  );

/** Decides whether an address or host may be connected to. */
export function outboundRules(allowedHosts: readonly string[]) {
  const networks = allowedHosts.flatMap((entry) => {
    if (entry.includes("/")) return [ipaddr.parseCIDR(entry)];
    return isIP(entry) ? [ipaddr.parseCIDR(`${entry}/${isIP(entry) === 4 ? 32 : 128}`)] : [];
  });
  const names = new Set(allowedHosts.filter((entry) => !entry.includes("/") && !isIP(entry)).map(lowerName));
  return {
    /** A host name the operator allowed: its addresses are not checked. */
    isAllowedName: (host: string) => names.has(lowerName(host)),
    /** Null when the address may be connected to, else the name of its range. */
    refusal(address: string): string | null {
      // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as the IPv4 address it carries.
      const parsed = ipaddr.process(address);
      if (networks.some(([network, bits]) => network.kind() === parsed.kind() && parsed.match(network, bits)))
        return null;
      const range = parsed.range();
      // Only global unicast: every named range (6to4, NAT64 and Teredo included, which can carry an internal IPv4) is refused.
      return range === "unicast" ? null : range;
    },
  };
}

const lowerName = (host: string) => host.toLowerCase().replace(/\.$/, "");

export type OutboundFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch for the openai SDK that connects only where `policy` allows. */
export function createOutboundFetch(policy: OutboundPolicy): OutboundFetch {
  const rules = outboundRules(policy.allowedHosts);

  // net.connect's lookup: called with the host name of every new connection (IP literals never reach it).
  function checkedLookup(
    hostname: string,
    options: LookupOneOptions | LookupAllOptions,
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void {
    lookup(hostname, { all: true, family: options.family ?? 0 }, (error, addresses) => {
      if (error) return callback(error, []);
      if (!rules.isAllowedName(hostname)) {
        const blocked = addresses.map((entry) => rules.refusal(entry.address)).find((range) => range !== null);
        // Any internal address refuses the name: connecting to "the public one" would leave the choice to the DNS.
        if (blocked) return callback(refused(`its host resolves to a ${blocked} address`), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  }
  const agent = new Agent({ connect: { lookup: checkedLookup } });

  const checkUrl = (url: URL) => {
    if (url.protocol !== "http:" && url.protocol !== "https:") throw refused("only http and https are called");
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (isIP(host) && !rules.isAllowedName(host)) {
      const range = rules.refusal(host);
      if (range) throw refused(`it names a ${range} address`);
    }
  };

  return async (input, init = {}) => {
    let url = new URL(input instanceof Request ? input.url : String(input));
    let method = (init.method ?? "GET").toUpperCase();
    let body = init.body;
    const headers = new Headers(init.headers);
    for (let redirects = 0; ; redirects++) {
      checkUrl(url);
      let response: Response;
      try {
        response = (await undiciFetch(url, {
          ...(init as UndiciRequestInit),
          method,
          headers: [...headers],
          body: body as UndiciRequestInit["body"],
          redirect: "manual",
          dispatcher: agent,
        })) as unknown as Response;
      } catch (error) {
        // undici wraps the lookup's refusal as the cause of its "fetch failed".
        const cause = (error as { cause?: unknown }).cause;
        throw cause instanceof ChatModelFailed ? cause : error;
      }
      const location = response.headers.get("location");
      if (!REDIRECTS.has(response.status) || location === null) return response;
      await response.body?.cancel();
      if (redirects >= policy.maxRedirects) throw refused(`more than ${policy.maxRedirects} redirects`);
      const next = new URL(location, url);
      // As fetch does: 303, and 301/302 after a POST, continue as a GET without the body.
      if (response.status === 303 || (response.status !== 307 && response.status !== 308 && method === "POST")) {
        method = "GET";
        body = undefined;
        headers.delete("content-type");
      }
      // The API key goes to the origin it was given for only.
      if (next.origin !== url.origin) headers.delete("authorization");
      url = next;
    }
  };
}
