using System.Security.Claims;
using Billing.Client.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Billing.Client;

/// <summary>
/// <c>token --role admin|service|user --sub &lt;uuid&gt; [--minutes 60]</c>: prints a JWT signed with the configured
/// key (<c>Auth:SigningKey</c>; the Development default when run with <c>dotnet run</c>) and exits.
/// </summary>
public static class TokenCommand
{
    public static bool IsTokenCommand(string[] args) => args.Length > 0 && args[0] == "token";

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        string? role = null;
        string? sub = null;
        var minutes = 60;
        var rest = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--role": role = Next(); break;
                case "--sub": sub = Next(); break;
                case "--minutes":
                    if (!int.TryParse(Next(), out minutes) || minutes is < 1 or > 60 * 24 * 365)
                    {
                        error.WriteLine("--minutes must be a whole number between 1 and 525600.");
                        return 2;
                    }

                    break;
                case "--help" or "-h":
                    error.WriteLine(Usage);
                    return 0;
                default: rest.Add(args[i]); break;
            }
        }

        if (role is "user" or "none" or "") role = null;
        if (role is not (null or BillingClaims.AdminRole or BillingClaims.ServiceRole))
        {
            error.WriteLine($"Unknown role '{role}'. {Usage}");
            return 2;
        }

        if (!Guid.TryParse(sub, out var subject))
        {
            error.WriteLine($"--sub must be a UUID. {Usage}");
            return 2;
        }

        // The same configuration sources as the server (appsettings, environment, command line), without starting it.
        // Where no environment is named, the token is for local development: the Development key signs it.
        var environmentNamed = rest.Any(a => a.StartsWith("--environment", StringComparison.OrdinalIgnoreCase)) ||
                               !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT")) ||
                               !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT"));
        var configuration = WebApplication.CreateBuilder(Program.Options(rest.ToArray(), environmentNamed ? null : Environments.Development)).Configuration;
        var auth = new AuthOptions();
        configuration.GetSection(AuthOptions.Section).Bind(auth);
        if (string.IsNullOrWhiteSpace(auth.SigningKey) || System.Text.Encoding.UTF8.GetByteCount(auth.SigningKey) < AuthOptions.MinimumKeyBytes)
        {
            error.WriteLine("Auth:SigningKey is not set (or shorter than 32 bytes). Set Auth__SigningKey, or run in the Development environment.");
            return 1;
        }

        output.WriteLine(Mint(auth, subject, role, TimeSpan.FromMinutes(minutes)));
        return 0;
    }

    /// <summary>An HS256 token for <paramref name="subject"/> with an optional role claim.</summary>
    public static string Mint(AuthOptions auth, Guid subject, string? role, TimeSpan lifetime, DateTime? now = null)
    {
        var issuedAt = now ?? DateTime.UtcNow;
        var claims = new List<Claim> { new(BillingClaims.Subject, subject.ToString()) };
        if (role is not null) claims.Add(new Claim(BillingClaims.Role, role));
        var descriptor = new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity(claims),
            Issuer = auth.Issuer,
            Audience = auth.Audience,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + lifetime,
            SigningCredentials = new SigningCredentials(auth.CreateSecurityKey(), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    private const string Usage = "Usage: token --role admin|service|user --sub <uuid> [--minutes 60]";
}
