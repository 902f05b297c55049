using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Billing.Client.Hosting;

/// <summary>
/// A JWT handler that remembers the tokens it validated: a service sends the same bearer token on every call, and
/// parsing it and checking its HMAC again each time was the largest single cost of a usage request in the gateway.
/// A remembered token is trusted until its <c>exp</c> (never longer than <see cref="MaxAge"/>, so a changed signing
/// key takes effect within it); failures are never remembered. Each request gets its own copy of the identity.
/// </summary>
internal sealed class CachingJsonWebTokenHandler : JsonWebTokenHandler
{
    /// <summary>Longest time a validated token is trusted without checking it again.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);

    /// <summary>Tokens remembered at most; past it the cache starts over (a flood of distinct tokens costs only validation).</summary>
    public const int MaxTokens = 10_000;

    private readonly ConcurrentDictionary<string, Validated> validated = new(StringComparer.Ordinal);
    private readonly TimeProvider time;

    public CachingJsonWebTokenHandler(TimeProvider time)
    {
        this.time = time;
        MapInboundClaims = false;
    }

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (TryGetValidated(token, validationParameters.IssuerSigningKey, out var hit)) return hit.Copy();

        var now = time.GetUtcNow().UtcDateTime;
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt) return result;

        var until = jwt.ValidTo == DateTime.MinValue ? now : DateTime.SpecifyKind(jwt.ValidTo, DateTimeKind.Utc);
        if (until > now + MaxAge) until = now + MaxAge;
        if (validated.Count >= MaxTokens) validated.Clear();
        validated[token] = new Validated(result, until, validationParameters.IssuerSigningKey);
        return result;
    }

    /// <summary>
    /// A token validated with <paramref name="signingKey"/> before and still trusted (not past its <c>exp</c> nor
    /// <see cref="MaxAge"/>); <see cref="CachedJwtBearerHandler"/> asks this before any of the bearer handler's own work.
    /// </summary>
    internal bool TryGetValidated(string token, SecurityKey? signingKey, [NotNullWhen(true)] out Validated? hit) =>
        validated.TryGetValue(token, out hit) && time.GetUtcNow().UtcDateTime < hit.Until && ReferenceEquals(hit.Key, signingKey);

    internal sealed record Validated(TokenValidationResult Result, DateTime Until, SecurityKey Key)
    {
        /// <summary>A principal of its own for one request (the identity copied, as in <see cref="Copy"/>).</summary>
        public ClaimsPrincipal NewPrincipal() => new(Result.ClaimsIdentity.Clone());

        /// <summary>A result of its own for one request: the identity is copied, so no request sees another's changes.</summary>
        public TokenValidationResult Copy() => new()
        {
            IsValid = true,
            ClaimsIdentity = Result.ClaimsIdentity.Clone(),
            SecurityToken = Result.SecurityToken,
            Issuer = Result.Issuer,
            TokenType = Result.TokenType,
            TokenContext = Result.TokenContext,
        };
    }
}
