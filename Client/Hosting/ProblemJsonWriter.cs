namespace Billing.Client.Hosting;

/// <summary>
/// API.md: every error is application/problem+json, whatever the request's <c>Accept</c>. ASP.NET Core's own writer
/// declines a request whose Accept names no JSON type (<c>Accept: text/html</c>), and then nothing writes the problem:
/// the exception handler's 503 went out bare (no body, no <c>Retry-After</c>, no <c>Idempotency-Key</c> to retry
/// with), UseStatusCodePages answered 401/403/404 as text/plain, and a refusal of an endpoint skipped
/// CustomizeProblemDetails. This writer takes every problem and hands it to the framework's writer, so a client that
/// accepts no JSON gets the same body and headers as one that does; for those the output is unchanged.
/// </summary>
internal sealed class ProblemJsonWriter(IProblemDetailsWriter framework) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => true;

    // The framework's WriteAsync does not look at Accept (only its CanWrite does): defaults, CustomizeProblemDetails,
    // then the problem as application/problem+json with the gateway's JSON options.
    public ValueTask WriteAsync(ProblemDetailsContext context) => framework.WriteAsync(context);

    /// <summary>Call after AddProblemDetails: wraps the one writer it registered.</summary>
    public static void Register(IServiceCollection services)
    {
        var registered = services.Single(d => d.ServiceType == typeof(IProblemDetailsWriter));
        var implementation = registered.ImplementationType
            ?? throw new InvalidOperationException("AddProblemDetails registered its writer other than by type; ProblemJsonWriter cannot wrap it.");
        services.Remove(registered);
        services.AddSingleton<IProblemDetailsWriter>(provider =>
            new ProblemJsonWriter((IProblemDetailsWriter)ActivatorUtilities.CreateInstance(provider, implementation)));
    }
}
