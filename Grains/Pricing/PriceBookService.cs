using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime.Services;
using Orleans.Services;

namespace Billing.Pricing;

/// <summary>One per silo (an Orleans grain service, addressed by silo): hands new prices to that silo's <see cref="PriceBook"/>.</summary>
[Alias("Billing.IPriceBookService")]
public interface IPriceBookService : IGrainService
{
    /// <summary>
    /// Adds the price to this silo's book, as stored: the model's prices are read from the database, the pushed copy
    /// names only the model. Returns once the book prices with them.
    /// </summary>
    [Alias("Apply")]
    Task Apply(ModelPrice price);
}

/// <summary>Reaches the <see cref="IPriceBookService"/> of a given silo.</summary>
public interface IPriceBookServiceClient : IGrainServiceClient<IPriceBookService>
{
    IPriceBookService On(SiloAddress silo);
}

internal sealed class PriceBookServiceClient(IServiceProvider services) : GrainServiceClient<IPriceBookService>(services), IPriceBookServiceClient
{
    public IPriceBookService On(SiloAddress silo) => GetGrainService(silo);
}

/// <summary>Also runs the book's background refresh for as long as the silo runs.</summary>
[Reentrant]
internal sealed class PriceBookService(GrainId id, Silo silo, ILoggerFactory loggerFactory, PriceBook book)
    : GrainService(id, silo, loggerFactory), IPriceBookService
{
    private readonly CancellationTokenSource stopping = new();
    private Task refresh = Task.CompletedTask;

    public override Task Start()
    {
        refresh = Task.Run(() => book.RefreshLoopAsync(stopping.Token));
        return base.Start();
    }

    public override async Task Stop()
    {
        await stopping.CancelAsync();
        await refresh;
        stopping.Dispose();
        await base.Stop();
    }

    // The pushed price itself is not trusted: a grain service takes calls from any grain of the cluster, and a price
    // pushed by an agent grain would price every tenant's usage on this silo (the trust boundary of AddPrice).
    public Task Apply(ModelPrice price) => book.ApplyStoredAsync(price.ModelId);
}
