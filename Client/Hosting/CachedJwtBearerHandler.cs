using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Billing.Client.Hosting;

/// <summary>
/// The bearer handler with a shortcut for a token that <see cref="CachingJsonWebTokenHandler"/> has already validated:
/// the same ticket the base handler would build (the token's identity, its <c>iat</c>/<c>exp</c> as the ticket's
/// times), without the base handler's per-request work around the cache (a copy of the validation parameters, the
/// event contexts, the validation result). Anything else (no token, an unknown, expired or failed token) goes the
/// base handler's way unchanged, and so do challenges and forbids. The gateway configures no JwtBearerEvents, so
/// skipping them on a hit changes nothing.
/// </summary>
internal sealed class CachedJwtBearerHandler(IOptionsMonitor<JwtBearerOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : JwtBearerHandler(options, logger, encoder)
{
    private const string BearerPrefix = "Bearer ";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Options.TokenHandlers is [CachingJsonWebTokenHandler cache] &&
            BearerToken(Request.Headers.Authorization.ToString()) is { } token &&
            cache.TryGetValidated(token, Options.TokenValidationParameters.IssuerSigningKey, out var hit))
        {
            var jwt = hit.Result.SecurityToken;
            var properties = new AuthenticationProperties { ExpiresUtc = SafeTime(jwt.ValidTo), IssuedUtc = SafeTime(jwt.ValidFrom) };
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(hit.NewPrincipal(), properties, Scheme.Name)));
        }

        return base.HandleAuthenticateAsync();
    }

    /// <summary>The token as the base handler reads it: after "Bearer " (any case), trimmed; null when there is none.</summary>
    private static string? BearerToken(string authorization)
    {
        if (!authorization.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase)) return null;
        var token = authorization[BearerPrefix.Length..].Trim();
        return token.Length == 0 ? null : token;
    }

    private static DateTimeOffset? SafeTime(DateTime time) => time == DateTime.MinValue ? null : time;
}
