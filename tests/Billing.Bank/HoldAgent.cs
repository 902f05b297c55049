namespace Billing.Bank;

/// <summary>
/// The bank's agents with holds and its expiring grants. An agent reserves a streaming call's worst case (a hold),
/// "streams", then captures below, at or above the hold, voids it, or abandons it (a TTL of 1–3 s lets it expire by
/// itself). Some agents race a retry of their capture against the first attempt; some probe that a hold ends once
/// (a capture after a void and a void after a capture must be 409s). Every op is retried with its id until answered.
/// </summary>
public static class HoldAgent
{
    /// <summary>Price of the bank's one model, per million tokens (Program inserts it).</summary>
    public const decimal InputPrice = 3.00m, OutputPrice = 15.00m;

    public static decimal CostOf(long input, long output) => (input * InputPrice + output * OutputPrice) / 1_000_000m;

    public static async Task Run(Runner runner, Random r, Func<int> nextId, Guid user, Guid? project, TimeSpan requestTimeout, Stats stats, Action<string> violation)
    {
        var plan = r.Next(100) switch { < 25 => "below", < 40 => "equal", < 55 => "above", < 75 => "void", < 83 => "late", _ => "abandon" };
        var input = r.Next(0, 200_000);
        var maxOutput = r.Next(0, 60_000);
        var ttl = plan switch { "abandon" => r.Next(1, 4), "late" => 1, _ => r.Next(4, 16) };
        var place = new Op
        {
            Id = nextId(), Type = OpType.PlaceHold, Project = project ?? Guid.Empty, User = user, Input = input, Output = maxOutput, TtlSeconds = ttl, Plan = plan,
        };
        await runner.Execute(place, DateTime.UtcNow.AddSeconds(30), r, r.Next(100) < 4);
        if (place.Answer?.Kind == OutcomeKind.Refused) Interlocked.Increment(ref stats.HoldsRefused);
        if (place.Answer?.Kind != OutcomeKind.Ok) return;
        Interlocked.Increment(ref stats.HoldsPlaced);
        if (plan == "abandon")
        {
            Interlocked.Increment(ref stats.Abandoned);
            return;
        }

        // The call streams; a slow agent's outlives its hold (a late capture: charged whole from available, or refused).
        await Task.Delay(plan == "late" ? r.Next(1_100, 1_600) : r.Next(0, 300));
        if (plan == "void")
        {
            var cancel = new Op { Id = nextId(), Type = OpType.VoidHold, HoldId = place.Key, Plan = plan };
            await runner.Execute(cancel, DateTime.UtcNow.AddSeconds(30), r, r.Next(100) < 4);
            Interlocked.Increment(ref stats.Voids);
            if (cancel.Answer?.Hold?.Status == "voided" && r.Next(100) < 30)
            {
                // A voided hold cannot be captured (an expired one could be, late).
                var probe = new Op
                {
                    Id = nextId(), Type = OpType.CaptureHold, HoldId = place.Key, Key = Guid.NewGuid(), Input = 1, Output = 1, Plan = "capture-after-void",
                    Expect = OutcomeKind.Conflict,
                };
                await runner.Execute(probe, DateTime.UtcNow.AddSeconds(30), r, false);
                Interlocked.Increment(ref stats.ConflictProbes);
            }

            return;
        }

        var (usedInput, usedOutput) = plan switch
        {
            "below" or "late" => ((long)r.Next(0, input + 1), (long)r.Next(0, maxOutput + 1)),
            "equal" => ((long)input, (long)maxOutput),
            _ => ((long)input + r.Next(0, 50_000), (long)maxOutput + r.Next(1, 40_000)),
        };
        var defaultUsageId = r.Next(2) == 0;
        var capture = new Op
        {
            Id = nextId(), Type = OpType.CaptureHold, HoldId = place.Key, Key = defaultUsageId ? place.Key : Guid.NewGuid(), DefaultUsageId = defaultUsageId,
            Input = usedInput, Output = usedOutput, Plan = plan,
        };
        if (r.Next(100) < 15)
        {
            // The agent's retry races its first attempt: where both are answered, the answers are the same.
            var raced = runner.Attempt(capture, requestTimeout);
            await runner.Execute(capture, DateTime.UtcNow.AddSeconds(30), r, r.Next(100) < 4);
            Interlocked.Increment(ref stats.RacedRetries);
            CompareCapture(capture, await raced, stats, violation, live: true);
        }
        else
        {
            await runner.Execute(capture, DateTime.UtcNow.AddSeconds(30), r, r.Next(100) < 4);
        }

        if (capture.Answer?.Capture is { } receipt)
        {
            Interlocked.Increment(ref stats.Captures);
            if (plan == "above") Interlocked.Increment(ref stats.CapturesAboveHold);
            if (receipt.Shortfall > 0) Interlocked.Increment(ref stats.Shortfalls);
            if (receipt.Late) Interlocked.Increment(ref stats.LateCaptures);
            if (r.Next(100) < 30)
            {
                var probe = new Op { Id = nextId(), Type = OpType.VoidHold, HoldId = place.Key, Plan = "void-after-capture", Expect = OutcomeKind.Conflict };
                await runner.Execute(probe, DateTime.UtcNow.AddSeconds(30), r, false);
                Interlocked.Increment(ref stats.ConflictProbes);
            }
        }
        else if (capture.Answer?.Kind == OutcomeKind.Refused)
        {
            Interlocked.Increment(ref stats.LateCapturesRefused);
        }
    }

    /// <summary>A grant of 0.0001–4.0000, most expiring 1–8 s from now; in effect from a second ago (so a retry after its expiry is still valid input).</summary>
    public static Op NewGrant(Random r, int id, AccountKind kind, Guid account)
    {
        var now = DateTimeOffset.UtcNow;
        return new Op
        {
            Id = id, Type = OpType.Grant, Kind = kind, Account = account, Amount = r.Next(1, 40_000) / 10_000m,
            Category = r.Next(2) == 0 ? GrantCategory.Promotional : GrantCategory.Paid, Priority = r.Next(0, 101),
            EffectiveAt = now.AddSeconds(-1), ExpiresAt = r.Next(100) < 80 ? now.AddMilliseconds(r.Next(1_000, 8_000)) : null,
        };
    }

    /// <summary>
    /// A capture sent again (a racing retry, or the replay after recovery) answers with the first receipt, or the first
    /// refusal: a late capture refused for balance claims its usage id, so it stays refused after its payer has money
    /// again, and a copy still running when it was refused cannot charge afterwards. Nothing may differ.
    /// </summary>
    public static void CompareCapture(Op op, Outcome again, Stats stats, Action<string> violation, bool live)
    {
        if (!again.Definite)
        {
            if (!live) violation($"replay of an answered capture after recovery got no answer: {again} for {op}");
            return;
        }

        if (op.Answer is not { } first || !first.Definite) return;
        var same = (first.Kind, again.Kind) switch
        {
            (OutcomeKind.Ok, OutcomeKind.Ok) => first.Capture == again.Capture,
            (OutcomeKind.Refused, OutcomeKind.Refused) => first.BillingErrorId == again.BillingErrorId,
            var (a, b) => a == b,
        };
        if (!same)
        {
            Interlocked.Increment(ref stats.ReplayMismatches);
            violation($"capture answered twice differently: first {first}, again {again} ({op})");
        }
    }

    /// <summary>A placement sent again answers with the same hold (its status may have moved on).</summary>
    public static void ComparePlacement(Op op, Outcome again, Stats stats, Action<string> violation)
    {
        if (!again.Definite)
        {
            violation($"replay of a placed hold after recovery got no answer: {again} for {op}");
            return;
        }

        op.ReplayAnswer = again;
        var (a, b) = (op.Answer?.Hold, again.Hold);
        if (again.Kind == OutcomeKind.Refused && a is not null)
        {
            violation($"a granted hold placed again answered {again} ({op})");
            return;
        }

        if (again.Kind != OutcomeKind.Ok || a is null || b is null || a with { Status = b.Status } != b)
        {
            Interlocked.Increment(ref stats.ReplayMismatches);
            violation($"hold placed twice differently: first {op.Answer}, again {again} ({op})");
        }
    }
}
