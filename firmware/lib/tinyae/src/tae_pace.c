/* tinyae — the sample clock of sensor mode; see tae_pace.h. */
#include "tae_pace.h"

void tae_pace_init(tae_pace_t *p, uint32_t period_ticks, int catch_up)
{
    p->period = period_ticks >= 1u ? period_ticks : 1u;
    p->catch_up = (uint8_t)(catch_up != 0);
    tae_pace_restart(p);
}

void tae_pace_restart(tae_pace_t *p)
{
    p->next_due = 0u;
    p->skipped = 0u;
    p->late = 0u;
    p->started = 0u;
}

int tae_pace_due(tae_pace_t *p, uint32_t now)
{
    uint32_t behind;
    if (!p->started) {
        p->next_due = now;
        p->started = 1u;
    }
    if ((int32_t)(now - p->next_due) < 0) {
        return 0;
    }
    behind = now - p->next_due;
    if (!p->catch_up && behind >= p->period) {
        uint32_t missed = behind / p->period;
        p->skipped += missed;
        p->next_due += missed * p->period;
        behind -= missed * p->period;
    }
    if (behind >= p->period - p->period / 2u) {
        p->late++;
    }
    p->next_due += p->period;
    return 1;
}
