using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Billing.Testing;

/// <summary>One request a receiver got, and whether its Standard Webhooks signature verified.</summary>
public sealed record ReceivedWebhook(string Path, string Id, long Timestamp, string Signature, string Body, bool SignatureValid, int Answered);

/// <summary>
/// A real webhook receiver on Kestrel (a free loopback port). Each path is one endpoint: <c>/ok/{name}</c> accepts,
/// <c>/flaky/{n}/{name}</c> answers 500 to the first n attempts of each webhook-id, <c>/gone/{name}</c> answers 410,
/// <c>/hang/{name}</c> accepts the request and never answers (until the sender gives up or the receiver stops).
/// Every request's signature is verified the Standard Webhooks way with the secret registered for the path.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly ConcurrentDictionary<string, string> secrets = new();
    private readonly ConcurrentDictionary<(string Path, string Id), int> attempts = new();

    private readonly TimeSpan delay;

    private WebhookReceiver(WebApplication app, Uri baseAddress, TimeSpan delay)
    {
        this.app = app;
        BaseAddress = baseAddress;
        this.delay = delay;
    }

    public Uri BaseAddress { get; }

    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();

    /// <summary>Starts a receiver; <paramref name="delay"/> makes each answer slow (deliveries in flight when a silo dies).</summary>
    public static async Task<WebhookReceiver> StartAsync(TimeSpan? delay = null)
    {
        var port = PostgresServer.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Logging.ClearProviders(); // the test output stays the tests'
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, new Uri($"http://127.0.0.1:{port}"), delay ?? TimeSpan.Zero);
        app.MapPost("/{**path}", (Delegate)receiver.Receive);
        await app.StartAsync();
        return receiver;
    }

    /// <summary>The secret the receiver verifies requests to <paramref name="path"/> with (from the creation's answer).</summary>
    public void Trust(string path, string secret) => secrets[path] = secret;

    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    public IEnumerable<ReceivedWebhook> To(string path) => Received.Where(r => r.Path == path);

    private async Task<IResult> Receive(HttpContext context)
    {
        var path = context.Request.Path.Value!;
        if (path.StartsWith("/hang/", StringComparison.Ordinal))
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, app.Lifetime.ApplicationStopping);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            return Results.Empty;
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync();
        var id = context.Request.Headers["webhook-id"].ToString();
        var timestamp = long.TryParse(context.Request.Headers["webhook-timestamp"].ToString(), out var t) ? t : -1;
        var signature = context.Request.Headers["webhook-signature"].ToString();
        var valid = secrets.TryGetValue(path, out var secret) && Verify(secret, id, timestamp, body, signature);
        var attempt = attempts.AddOrUpdate((path, id), 1, (_, n) => n + 1);
        var status = path.Split('/', StringSplitOptions.RemoveEmptyEntries) switch
        {
            ["gone", ..] => StatusCodes.Status410Gone,
            ["flaky", var failures, ..] when attempt <= int.Parse(failures) => StatusCodes.Status500InternalServerError,
            _ => valid ? StatusCodes.Status204NoContent : StatusCodes.Status401Unauthorized,
        };
        if (delay > TimeSpan.Zero) await Task.Delay(delay);
        Received.Enqueue(new ReceivedWebhook(path, id, timestamp, signature, body, valid, status));
        return Results.StatusCode(status);
    }

    /// <summary>
    /// Standard Webhooks, written out here rather than taken from the code under test: HMAC-SHA256 keyed with the
    /// base64-decoded secret after <c>whsec_</c>, over <c>{id}.{timestamp}.{body}</c>; the header is a space-separated
    /// list of <c>v1,{base64}</c>; the timestamp must be within 5 minutes.
    /// </summary>
    public static bool Verify(string secret, string id, long timestamp, string body, string signatureHeader)
    {
        if (string.IsNullOrEmpty(id) || Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - timestamp) > 300) return false;
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        var expected = Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
        return signatureHeader.Split(' ').Any(candidate =>
            candidate.StartsWith("v1,", StringComparison.Ordinal)
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(candidate[3..]), Encoding.ASCII.GetBytes(expected)));
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
