// AWS Signature V4 query presigning (the S3 "presigned URL"), computed locally. The signing key
// depends only on the day, region and secret, so it is derived once a day instead of once per URL:
// a page of results presigns hundreds of URLs, the whole profile thousands.
import { createHash, createHmac } from "node:crypto";

export interface PresignSettings {
  endpoint: URL;
  region: string;
  accessKey: string;
  secretKey: string;
}

export interface PresignOptions {
  method?: "GET" | "PUT";
  now?: Date;
  /** Extra signed query parameters, such as GET's `response-content-disposition`. */
  query?: Record<string, string>;
  /**
   * Headers the request must carry with exactly these values (beside `host`): a client that sends
   * another value, or leaves one out, is refused by the server's signature check.
   */
  headers?: Record<string, string>;
}

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters. */
const encode = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function createPresigner({ endpoint, region, accessKey, secretKey }: PresignSettings) {
  const host = endpoint.host;
  const base = `${endpoint.protocol}//${host}`;
  let cached: { day: string; key: Buffer } | null = null;
  const signingKey = (day: string) => {
    if (cached?.day !== day)
      cached = { day, key: hmac(hmac(hmac(hmac(`AWS4${secretKey}`, day), region), "s3"), "aws4_request") };
    return cached.key;
  };

  /** A URL for `bucket/key` valid for `expirySeconds` from `now` (path-style addressing). */
  return (bucket: string, key: string, expirySeconds: number, options: PresignOptions = {}): string => {
    const { method = "GET", now = new Date(), query = {}, headers = {} } = options;
    const amzDate = now
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d{3}/, "");
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${region}/s3/aws4_request`;
    const path = `/${encode(bucket)}/${key.split("/").map(encode).join("/")}`;
    const signed = [
      ["host", host],
      ...Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value.trim()]),
    ].sort(([a], [b]) => (a! < b! ? -1 : 1));
    const signedHeaders = signed.map(([name]) => name).join(";");
    const canonicalQuery = [
      ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
      ["X-Amz-Credential", `${accessKey}/${scope}`],
      ["X-Amz-Date", amzDate],
      ["X-Amz-Expires", String(expirySeconds)],
      ["X-Amz-SignedHeaders", signedHeaders],
      ...Object.entries(query),
    ]
      .map(([name, value]) => [encode(name!), encode(value!)])
      .sort(([a], [b]) => (a! < b! ? -1 : 1))
      .map(([name, value]) => `${name}=${value}`)
      .join("&");
    const canonicalHeaders = signed.map(([name, value]) => `${name}:${value}\n`).join("");
    const canonicalRequest = `${method}\n${path}\n${canonicalQuery}\n${canonicalHeaders}\n${signedHeaders}\nUNSIGNED-PAYLOAD`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest).digest("hex")}`;
    const signature = createHmac("sha256", signingKey(day)).update(stringToSign).digest("hex");
    return `${base}${path}?${canonicalQuery}&X-Amz-Signature=${signature}`;
  };
}
