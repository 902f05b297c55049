using System.Security.Cryptography;
using System.Text;

namespace Billing.Webhooks;

/// <summary>
/// Standard Webhooks (standardwebhooks.com): <c>webhook-signature: v1,{base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"}</c>,
/// keyed with the bytes of the secret after <c>whsec_</c>, base64-decoded.
/// </summary>
public static class WebhookSignature
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static string Sign(string secret, string id, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        var mac = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
        return "v1," + Convert.ToBase64String(mac);
    }
}
